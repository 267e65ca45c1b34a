package broker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/broker"
)

func TestOptionsValidate(t *testing.T) {
	tests := map[string]struct {
		opts    broker.Options
		wantErr string
	}{
		"defaults":            {opts: broker.Options{}},
		"localhost":           {opts: broker.Options{Addr: "localhost:0"}},
		"ipv6 loopback":       {opts: broker.Options{Addr: "[::1]:0"}},
		"127/8":               {opts: broker.Options{Addr: "127.0.0.2:0"}},
		"all interfaces":      {opts: broker.Options{Addr: "0.0.0.0:9092"}, wantErr: "loopback"},
		"empty host":          {opts: broker.Options{Addr: ":9092"}, wantErr: "loopback"},
		"external ip":         {opts: broker.Options{Addr: "10.1.2.3:9092"}, wantErr: "loopback"},
		"hostname":            {opts: broker.Options{Addr: "example.com:9092"}, wantErr: "loopback"},
		"no port":             {opts: broker.Options{Addr: "127.0.0.1"}, wantErr: "missing port"},
		"negative partitions": {opts: broker.Options{Partitions: -1}, wantErr: "partitions"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.opts.EnsureDefaults()
			err := tc.opts.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
	var o broker.Options
	o.EnsureDefaults()
	if o.Addr != "127.0.0.1:9092" || o.Partitions != 1 {
		t.Fatalf("defaults: %+v", o)
	}
}

func TestStartRejectsNonLoopback(t *testing.T) {
	if _, err := broker.Start(broker.Options{Addr: "0.0.0.0:0"}, nil); err == nil {
		t.Fatal("Start bound 0.0.0.0")
	}
}

func TestAddrInUse(t *testing.T) {
	b := startBroker(t, broker.Options{})
	_, err := broker.Start(broker.Options{Addr: b.Addr()}, nil)
	if !errors.Is(err, broker.ErrAddrInUse) {
		t.Fatalf("got %v, want ErrAddrInUse", err)
	}
	for _, want := range []string{b.Addr(), "--broker-addr"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestDataDirLocked(t *testing.T) {
	dir := t.TempDir()
	startBroker(t, broker.Options{DataDir: dir})
	_, err := broker.Start(broker.Options{Addr: "127.0.0.1:0", DataDir: dir}, nil)
	if !errors.Is(err, broker.ErrDataDirLocked) {
		t.Fatalf("got %v, want ErrDataDirLocked", err)
	}
}

func TestAddrReportsBoundPort(t *testing.T) {
	b := startBroker(t, broker.Options{Addr: "localhost:0"})
	if !strings.HasPrefix(b.Addr(), "127.0.0.1:") || strings.HasSuffix(b.Addr(), ":0") {
		t.Fatalf("Addr() = %q", b.Addr())
	}
}

func TestAutoCreateTopic(t *testing.T) {
	for _, parts := range []int32{0, 3} {
		t.Run(fmt.Sprintf("partitions=%d", parts), func(t *testing.T) {
			ctx := testContext(t)
			b := startBroker(t, broker.Options{Partitions: parts})
			cl := newClient(t, b.Addr(), nil)
			produce(ctx, t, cl, "auto", "k", "v")
			topics, err := broker.ListTopics(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			want := max(parts, 1)
			if len(topics) != 1 || topics[0].Name != "auto" || int32(len(topics[0].Partitions)) != want {
				t.Fatalf("topics = %+v, want auto with %d partitions", topics, want)
			}
		})
	}
}

func TestCreateAndListTopics(t *testing.T) {
	ctx := testContext(t)
	b := startBroker(t, broker.Options{})
	cl := newClient(t, b.Addr(), nil)

	if err := broker.CreateTopic(ctx, cl, "orders", 4); err != nil {
		t.Fatal(err)
	}
	if err := broker.CreateTopic(ctx, cl, "orders", 4); !errors.Is(err, broker.ErrTopicExists) {
		t.Fatalf("second create: got %v, want ErrTopicExists", err)
	}
	if err := broker.CreateTopic(ctx, cl, "clicks", 0); err != nil {
		t.Fatal(err)
	}
	if err := broker.CreateTopic(ctx, cl, "bad/name", 1); err == nil {
		t.Fatal("created a topic with an invalid name")
	}

	var kvs []string
	for i := range 10 {
		kvs = append(kvs, fmt.Sprintf("user-%d", i), "v")
	}
	got := produce(ctx, t, cl, "orders", kvs...)
	perPart := map[int32]int64{}
	for _, r := range got {
		perPart[r.Partition]++
	}

	topics, err := broker.ListTopics(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(topics) != 2 || topics[0].Name != "clicks" || topics[1].Name != "orders" {
		t.Fatalf("topics = %+v", topics)
	}
	if n := len(topics[0].Partitions); n != 1 || topics[0].Records != 0 {
		t.Fatalf("clicks = %+v, want 1 empty partition (broker default)", topics[0])
	}
	orders := topics[1]
	if len(orders.Partitions) != 4 || orders.Records != 10 {
		t.Fatalf("orders = %+v, want 4 partitions and 10 records", orders)
	}
	for i, p := range orders.Partitions {
		if p.Partition != int32(i) || p.StartOffset != 0 || p.EndOffset != perPart[p.Partition] {
			t.Fatalf("orders partition %d = %+v, want end offset %d", i, p, perPart[p.Partition])
		}
	}
}

// TestPersistAcrossRestart closes the broker cleanly and starts another on
// the same DataDir: topics, partitions, records, offsets and committed
// group offsets must all come back.
func TestPersistAcrossRestart(t *testing.T) {
	ctx := testContext(t)
	dir := t.TempDir()

	b1, err := broker.Start(broker.Options{Addr: "127.0.0.1:0", DataDir: dir}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	cl := newClient(t, b1.Addr(), nil)
	if err := broker.CreateTopic(ctx, cl, "events", 3); err != nil {
		t.Fatal(err)
	}
	var kvs []string
	for i := range 30 {
		kvs = append(kvs, fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i))
	}
	want := produce(ctx, t, cl, "events", kvs...)
	wantCommit := kadm.Offsets{}
	wantCommit.AddOffset("events", 1, 2, -1)
	if _, err := kadm.NewClient(cl).CommitOffsets(ctx, "g", wantCommit); err != nil {
		t.Fatal(err)
	}
	wantTopics, err := broker.ListTopics(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	// Close with the client still connected: Close must not wait for it.
	if err := b1.Close(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	if err := b1.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	b2 := startBroker(t, broker.Options{DataDir: dir})
	verifyRestored(ctx, t, b2.Addr(), "events", want, wantTopics)

	// The restarted broker keeps appending after the restored offsets.
	cl2 := newClient(t, b2.Addr(), nil, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	r := &kgo.Record{Topic: "events", Partition: 1, Value: []byte("after")}
	if err := cl2.ProduceSync(ctx, r).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if want := wantTopics[0].Partitions[1].EndOffset; r.Offset != want {
		t.Fatalf("first offset after restart = %d, want %d", r.Offset, want)
	}
}

// verifyRestored checks topic metadata, records and the commit of group "g".
func verifyRestored(ctx context.Context, t *testing.T, addr, topic string, want []rec, wantTopics []broker.TopicInfo) {
	t.Helper()
	cl := newClient(t, addr, nil)
	gotTopics, err := broker.ListTopics(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(gotTopics) != fmt.Sprint(wantTopics) {
		t.Fatalf("topics after restart:\n got %+v\nwant %+v", gotTopics, wantTopics)
	}
	equalRecs(t, consume(ctx, t, addr, nil, topic, len(want)), want)
	commits, err := kadm.NewClient(cl).FetchOffsets(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := commits.Lookup(topic, 1); !ok || o.At != 2 {
		t.Fatalf("committed offset of group g after restart = %+v (found %v), want 2", o, ok)
	}
}
