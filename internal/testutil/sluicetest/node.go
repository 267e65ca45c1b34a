package sluicetest

import (
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/ingest"
	"github.com/sluice-dev/sluice/internal/node"
)

// StartNode starts a real node (embedded broker, catalog, tables,
// ingestion and the REST API) on free ports in a fresh data directory, with
// ingestion tuned for short tests, and closes it at cleanup. Logs go to the
// test's output at Warn, or Debug with SLUICE_TEST_LOG set.
func StartNode(t testing.TB) *node.Node {
	t.Helper()
	lv := slog.LevelWarn
	if os.Getenv("SLUICE_TEST_LOG") != "" {
		lv = slog.LevelDebug
	}
	n, err := node.Start(Context(t), node.Options{
		DataDir:    t.TempDir(),
		BrokerAddr: "127.0.0.1:0",
		HTTPAddr:   "127.0.0.1:0",
		Ingest: ingest.Options{FetchMaxWait: 100 * time.Millisecond, DiscoveryInterval: 500 * time.Millisecond,
			MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second, ConnectTimeout: time.Second},
	}, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: lv})))
	if err != nil {
		t.Fatalf("starting node: %v", err)
	}
	t.Cleanup(n.Close)
	return n
}
