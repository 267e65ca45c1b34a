package ingest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/broker"
	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/table"
)

// waitState waits (bounded) until the stream reports state.
func (e *env) waitState(name, state string) Status {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := e.m.Status(context.Background(), name)
		if err == nil && st.State == state {
			return st
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("stream %s: state %q after 30s, want %q (%+v)", name, st.State, state, st)
		}
		time.Sleep(10 * time.Millisecond) // polling an outcome
	}
}

func streamSpec(name, bootstrap, topic string) string {
	return fmt.Sprintf(`{name: %s, source: {kafka: {subscribe: %s}}, connection: {bootstrap_servers: "%s"},
ingestion: {destination: %s_ingestion, commit_interval: 50ms}}`, name, topic, bootstrap, name)
}

// TestBrokerOutage: a stream whose broker goes away reports failing with
// the error and recovers by itself when the broker returns, losing and
// duplicating nothing; another stream on another broker is not affected.
func TestBrokerOutage(t *testing.T) {
	e := newEnv(t) // e.broker: the healthy broker of stream "other"
	dataDir := t.TempDir()
	flaky, err := broker.Start(broker.Options{Addr: "127.0.0.1:0", DataDir: dataDir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := flaky.Addr()
	t.Cleanup(func() { flaky.Close() })
	prod := func() *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation())
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	p := prod()
	if err := broker.CreateTopic(context.Background(), p, "f", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.create(streamSpec("main.demo.flaky", addr, "f")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.create(streamSpec("main.demo.other", e.broker.Addr(), "o")); err != nil {
		t.Fatal(err)
	}
	produceTo := func(cl *kgo.Client, topic string, vals ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, v := range vals {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produceTo(p, "f", "f1", "f2")
	e.waitRows("main.demo.flaky_ingestion", ColValue, 2)
	p.Close()

	flaky.Close() // the broker goes away
	st := e.waitState("main.demo.flaky", StateFailing)
	if st.LastError == "" {
		t.Fatalf("failing without an error: %+v", st)
	}
	t.Logf("while the broker is down: %s", st.LastError)
	// The other stream keeps ingesting.
	produceTo(e.prod, "o", "o1", "o2", "o3")
	e.waitRows("main.demo.other_ingestion", ColValue, 3)

	// The broker returns on the same address with its data.
	flaky, err = broker.Start(broker.Options{Addr: addr, DataDir: dataDir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p = prod()
	defer p.Close()
	produceTo(p, "f", "f3", "f4")
	rows := e.waitRows("main.demo.flaky_ingestion", ColValue, 4)
	for i, r := range rows {
		if r.offset != int64(i) || r.value != fmt.Sprintf("f%d", i+1) {
			t.Fatalf("after recovery rows = %v", rows)
		}
	}
	e.waitState("main.demo.flaky", StateRunning)
}

// TestOptimizeDuringIngestion compacts the ingestion table over and over
// while records stream in; every record still lands exactly once and the
// committed offsets survive each compaction.
func TestOptimizeDuringIngestion(t *testing.T) {
	e := newEnv(t)
	if _, err := e.create(streamSpec("main.demo.orders", e.broker.Addr(), "orders")); err != nil {
		t.Fatal(err)
	}
	name, _ := ident.Parse("main.demo.orders_ingestion")
	stop := make(chan struct{})
	var optimized atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // compacts continuously, racing the ingestion commits
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			st, err := e.store.Optimize(context.Background(), name, table.OptimizeOptions{MinInputFiles: 2})
			if err != nil {
				t.Errorf("optimize: %v", err)
				return
			}
			if st.FilesRewritten > 0 {
				optimized.Add(1)
			}
		}
	}()
	const rounds, per = 30, 100
	for r := 0; r < rounds; r++ {
		var vals []string
		for j := r * per; j < (r+1)*per; j++ {
			vals = append(vals, fmt.Sprintf("v%d", j))
		}
		e.produce("orders", 0, "", vals...)
		e.waitRows("main.demo.orders_ingestion", ColValue, (r+1)*per) // one or more commits per round
	}
	close(stop)
	wg.Wait()
	const total = rounds * per
	rows := e.waitRows("main.demo.orders_ingestion", ColValue, total)
	for i, r := range rows {
		if r.offset != int64(i) || r.value != fmt.Sprintf("v%d", i) {
			t.Fatalf("row %d = %v", i, r)
		}
	}
	if optimized.Load() < 3 {
		t.Fatalf("only %d compactions rewrote files; the test did not exercise the race", optimized.Load())
	}
	tbl, err := e.store.Load(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if got := tbl.SnapshotProperties()[PropOffsets]; got != `{"orders":{"0":3000}}` {
		t.Fatalf("offsets after compactions = %s", got)
	}
	t.Logf("%d compactions rewrote files while ingesting", optimized.Load())
}
