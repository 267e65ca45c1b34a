package sluicetest

import (
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/ingest"
	"github.com/sluice-dev/sluice/internal/node"
)

// StartNode starts a real node (embedded broker, catalog, tables,
// ingestion and the REST API) on free ports in a fresh data directory, with
// ingestion tuned for short tests, and closes it at cleanup. Logs go to the
// test's output at Warn, or Debug with SLUICE_TEST_LOG set. Each configure
// function, in order, may change the options before the node starts, e.g.
// to set Online to a [RedisServer]'s URL.
func StartNode(t testing.TB, configure ...func(*node.Options)) *node.Node {
	t.Helper()
	lv := slog.LevelWarn
	if os.Getenv("SLUICE_TEST_LOG") != "" {
		lv = slog.LevelDebug
	}
	opts := node.Options{
		DataDir:    t.TempDir(),
		BrokerAddr: "127.0.0.1:0",
		HTTPAddr:   "127.0.0.1:0",
		Ingest: ingest.Options{FetchMaxWait: 100 * time.Millisecond, DiscoveryInterval: 500 * time.Millisecond,
			MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second, ConnectTimeout: time.Second},
	}
	for _, f := range configure {
		f(&opts)
	}
	n, err := node.Start(Context(t), opts, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: lv})))
	if err != nil {
		t.Fatalf("starting node: %v", err)
	}
	t.Cleanup(n.Close)
	return n
}

// Produce writes records (key:value lines, split at the first ':') to
// partition 0 of topic at addr, synchronously. A non-zero base gives the
// n-th record the timestamp base + n seconds (for deterministic output);
// zero leaves the client's clock.
func Produce(t testing.TB, addr, topic string, base time.Time, kvs ...string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, 0, len(kvs))
	for i, kv := range kvs {
		k, v, _ := strings.Cut(kv, ":")
		r := &kgo.Record{Topic: topic, Partition: 0, Key: []byte(k), Value: []byte(v)}
		if !base.IsZero() {
			r.Timestamp = base.Add(time.Duration(i) * time.Second)
		}
		recs = append(recs, r)
	}
	if err := cl.ProduceSync(Context(t), recs...).FirstErr(); err != nil {
		t.Fatalf("producing to %s: %v", topic, err)
	}
}
