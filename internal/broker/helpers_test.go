package broker_test

import (
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/broker"
)

// testTimeout bounds every blocking step of a test.
const testTimeout = 30 * time.Second

func testContext(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// startBroker starts a broker on a free port and closes it at cleanup.
func startBroker(t testing.TB, opts broker.Options) *broker.Broker {
	t.Helper()
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	b, err := broker.Start(opts, testLogger(t))
	if err != nil {
		t.Fatalf("starting broker: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("closing broker: %v", err)
		}
	})
	return b
}

// newClient returns a franz-go client for addr, closed at cleanup.
func newClient(t testing.TB, addr string, tc *tls.Config, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts = append([]kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.AllowAutoTopicCreation(),
		kgo.RecordRetries(20),
	}, opts...)
	if tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// rec is the comparable part of a record.
type rec struct {
	Partition  int32
	Offset     int64
	Key, Value string
}

func (r rec) String() string {
	return fmt.Sprintf("%d@%d %s=%s", r.Partition, r.Offset, r.Key, r.Value)
}

func sortRecs(rs []rec) []rec {
	slices.SortFunc(rs, func(a, b rec) int {
		return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
	return rs
}

// produce writes records synchronously and returns them with the
// partitions and offsets the broker acknowledged.
func produce(ctx context.Context, t testing.TB, cl *kgo.Client, topic string, kvs ...string) []rec {
	t.Helper()
	var rs []*kgo.Record
	for i := 0; i+1 < len(kvs); i += 2 {
		rs = append(rs, &kgo.Record{Topic: topic, Key: []byte(kvs[i]), Value: []byte(kvs[i+1])})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("producing: %v", err)
	}
	out := make([]rec, len(rs))
	for i, r := range rs {
		out[i] = rec{r.Partition, r.Offset, string(r.Key), string(r.Value)}
	}
	return sortRecs(out)
}

// consume reads topic from the start until it has n records.
func consume(ctx context.Context, t testing.TB, addr string, tc *tls.Config, topic string, n int) []rec {
	t.Helper()
	cl := newClient(t, addr, tc,
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	var out []rec
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consuming %s: got %d of %d records: %v", topic, len(out), n, err)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("consuming %s[%d]: %v", topic, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, rec{r.Partition, r.Offset, string(r.Key), string(r.Value)})
		})
	}
	return sortRecs(out)
}

func equalRecs(t testing.TB, got, want []rec) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("records differ\n got: %v\nwant: %v", got, want)
	}
}
