package node_test

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/pipeline"
	"github.com/sluice-dev/sluice/internal/table"
	"github.com/sluice-dev/sluice/internal/testutil/sluicetest"
)

// The pipeline of TestPipelineSIGKILLExactlyOnce: a stateless streaming
// table (projection, WHERE and an expectation that drops rows), a
// one-second tumbling window with a watermark over it, and a materialized
// view over the windows.
const (
	chaosPipeline = "main.chaos.events_pipeline"
	chaosIngest   = "main.chaos.events_ingestion"
	chaosKept     = "main.chaos.kept"
	chaosWindows  = "main.chaos.per_second"
	chaosPerKey   = "main.chaos.per_key"
	chaosSQL      = `
CREATE OR REFRESH STREAMING TABLE main.chaos.kept (
  CONSTRAINT not_seven EXPECT (value.n % 7 <> 0) ON VIOLATION DROP ROW
) AS SELECT value.id AS id, value.n AS n, value.k AS k, value.at AS at,
            kafka_partition AS part, kafka_offset AS off
FROM STREAM(main.chaos.events_ingestion)
WHERE value.n % 5 <> 0;

CREATE OR REFRESH STREAMING TABLE main.chaos.per_second AS
SELECT window(at, '1 second') AS w, k, count(*) AS cnt, sum(n) AS total
FROM STREAM(main.chaos.kept) WATERMARK at DELAY OF INTERVAL 2 SECONDS
GROUP BY window(at, '1 second'), k;

CREATE OR REFRESH MATERIALIZED VIEW main.chaos.per_key AS
SELECT k, sum(cnt) AS cnt, sum(total) AS total, count(*) AS windows
FROM main.chaos.per_second GROUP BY k;
`
	chaosDelay  = 2 * time.Second
	chaosWindow = time.Second
)

// chaosEventTime is the event time of event n: 10ms apart, in production
// order, so that no event is ever late.
func chaosEventTime(n int) time.Time {
	return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n) * 10 * time.Millisecond)
}

// TestPipelineSIGKILLExactlyOnce checks the pipeline promise "SIGKILL and
// restart at any moment yield tables identical to an uninterrupted run".
// The sluice binary runs as a child with its embedded broker, a stream and
// a continuous pipeline; a producer in the test writes events in event-time
// order to a one-partition topic while the child is killed with SIGKILL at
// seeded pseudo-random moments and restarted (the pipeline resumes by
// itself). Once everything is ingested and the pipeline has caught up, the
// tables are compared with a straightforward computation over the source
// rows: the stateless table holds each kept row once, the windowed table
// exactly the windows closed by the final watermark, each once, and the
// materialized view the sums of the windowed table. SLUICE_CHAOS_SEED=N
// replays a run's kill schedule.
func TestPipelineSIGKILLExactlyOnce(t *testing.T) {
	rng := startChaosTest(t, 0x919e11)
	brokerAddr := freeAddr(t) // the same port on every start, for the producer
	proc := newSluiceProcess(t, "--broker-addr", brokerAddr)
	const topic = "events"

	// 1. Start, create the topic, the stream and the pipeline, start
	// producing, and kill as soon as the pipeline has committed rows.
	proc.start()
	api := proc.waitUp()
	api.MustCreateTopic(t, topic, 1)
	api.MustCreateStream(t, fmt.Sprintf(`name: main.chaos.events
source: {kafka: {subscribe: %s}}
connection: {bootstrap_servers: embedded}
schema:
  payload:
    json_schema:
      type: object
      properties:
        id: {type: string}
        n:  {type: integer}
        k:  {type: string}
        at: {type: string, format: date-time}
      required: [id, n, k, at]
ingestion:
  destination: %s
  commit_interval: 100ms
  commit_max_records: 500
`, topic, chaosIngest))
	var info pipeline.Info
	if err := api.Do(sluicetest.Context(t), "POST", "/api/v1/pipelines",
		map[string]string{"name": chaosPipeline, "sql": chaosSQL, "trigger": "continuous"}, http.StatusOK, &info); err != nil {
		t.Fatalf("creating the pipeline: %v", err)
	}
	p := startEventProducer(t, brokerAddr, topic)
	sluicetest.Eventually(t, 30*time.Second, "the pipeline's first windows", func() (bool, string) {
		tb, err := api.Table(sluicetest.Context(t), chaosWindows)
		if err != nil {
			return false, err.Error()
		}
		return tb.Rows > 0, fmt.Sprintf("%d rows in %s", tb.Rows, chaosWindows)
	})
	t.Logf("kill 1: %s after start, once the first windows were committed; %d events acknowledged", proc.age(), p.count())
	proc.kill()

	// 2. Kills at random moments while the producer keeps writing (it
	// fails while no process serves the broker, and goes on after).
	kills := 3 + rng.IntN(3)
	for k := range kills {
		proc.start()
		time.Sleep(time.Duration(100+rng.IntN(1400)) * time.Millisecond) // the kill schedule, not synchronisation
		t.Logf("kill %d: %s after start (up: %v), %d events acknowledged so far", k+2, proc.age(), proc.isUp(), p.count())
		proc.kill()
	}

	// 3. The last start: produce a little more, stop, and wait for the
	// stream to ingest the whole topic and the pipeline to catch up.
	proc.start()
	api = proc.waitUp()
	before := p.count()
	sluicetest.Eventually(t, 30*time.Second, "the producer writing to the last process", func() (bool, string) {
		return p.count() >= before+500, fmt.Sprintf("%d events acknowledged", p.count())
	})
	acked, err := p.stop()
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	t.Logf("%d events acknowledged, %d batches failed (not acknowledged: in the topic or not)", len(acked), p.failures())

	end := topicEnd(t, brokerAddr, topic)
	sluicetest.Eventually(t, 30*time.Second, "ingesting the whole topic", func() (bool, string) {
		s, err := api.Stream(sluicetest.Context(t), "main.chaos.events")
		if err != nil {
			return false, err.Error()
		}
		got := s.Status.Offsets[topic][0]
		return got >= end, fmt.Sprintf("offset %d of %d", got, end)
	})
	sluicetest.Eventually(t, 30*time.Second, "the pipeline catching up", func() (bool, string) {
		return pipelineCaughtUp(t, api)
	})
	if err := api.Do(sluicetest.Context(t), "GET", "/api/v1/pipelines/"+url.PathEscape(chaosPipeline), nil, http.StatusOK, &info); err != nil {
		t.Fatal(err)
	}
	if err := proc.term(30 * time.Second); err != nil {
		t.Fatalf("stopping sluice with SIGTERM: %v", err)
	}
	t.Logf("the pipeline resumed %d times", strings.Count(proc.log(), `msg="pipeline resumed"`))

	// 4. Read the tables and compare with a computation over the source.
	store := openStore(t, proc.data)
	type srcRow struct {
		part    int32
		off     int64
		id, key string
		n       int64
		at      time.Time
	}
	var source []srcRow
	for _, r := range readRows(t, store, chaosIngest) {
		v := r["value"].(map[string]any)
		source = append(source, srcRow{int32(jsonInt(t, r["kafka_partition"])), jsonInt(t, r["kafka_offset"]),
			v["id"].(string), v["k"].(string), jsonInt(t, v["n"]), jsonTime(t, v["at"])})
	}
	slices.SortFunc(source, func(a, b srcRow) int { return cmp.Compare(a.off, b.off) })
	// A batch written by a killed process and retried to the next one is
	// in the topic twice; its second copy is a little behind in event
	// time, but never by the watermark's delay, so no event is late.
	bySrc := map[int64]srcRow{}
	ids := map[string]int{}
	var latest time.Time
	for _, r := range source {
		if r.at.Before(latest.Add(-chaosDelay)) {
			t.Fatalf("event %+v is late: an event at %v came before it (the test's assumption is that none is)", r, latest)
		}
		if r.at.After(latest) {
			latest = r.at
		}
		bySrc[r.off] = r
		ids[r.id]++
	}
	for _, a := range acked {
		if r, ok := bySrc[a.offset]; !ok || r.id != a.id {
			t.Errorf("acknowledged event %s at offset %d is not in %s (found %+v)", a.id, a.offset, chaosIngest, r)
		}
	}
	t.Logf("%s: %d rows of %d events (%d acknowledged; %d written twice, by a retry after a kill)", chaosIngest, len(source), len(ids), len(acked), len(source)-len(ids))

	// (i) The stateless table: each kept source row once.
	want := map[int64]srcRow{}
	for _, r := range source {
		if r.n%5 != 0 && r.n%7 != 0 {
			want[r.off] = r
		}
	}
	var bad []string
	seen := map[int64]bool{}
	for _, r := range readRows(t, store, chaosKept) {
		got := srcRow{int32(jsonInt(t, r["part"])), jsonInt(t, r["off"]), r["id"].(string), r["k"].(string), jsonInt(t, r["n"]), jsonTime(t, r["at"])}
		w, ok := want[got.off]
		switch {
		case seen[got.off]:
			bad = append(bad, fmt.Sprintf("duplicate: %+v", got))
		case !ok:
			bad = append(bad, fmt.Sprintf("a row that no kept source row explains: %+v", got))
		case got != w:
			bad = append(bad, fmt.Sprintf("row %+v, want %+v", got, w))
		}
		seen[got.off] = true
	}
	for off, w := range want {
		if !seen[off] {
			bad = append(bad, fmt.Sprintf("missing: %+v", w))
		}
	}
	reportBad(t, chaosKept, bad)
	t.Logf("%s: %d rows, as expected", chaosKept, len(seen))

	// (ii) The windowed table: exactly the windows closed by the final
	// watermark (the latest kept event time less the delay), each once.
	type winKey struct {
		start time.Time
		k     string
	}
	type winVal struct{ cnt, total int64 }
	var maxAt time.Time
	all := map[winKey]winVal{}
	for _, r := range want {
		if r.at.After(maxAt) {
			maxAt = r.at
		}
		wk := winKey{r.at.Truncate(chaosWindow), r.key}
		v := all[wk]
		v.cnt++
		v.total += r.n
		all[wk] = v
	}
	wm := maxAt.Add(-chaosDelay)
	wantWin := map[winKey]winVal{}
	for k, v := range all {
		if !k.start.Add(chaosWindow).After(wm) {
			wantWin[k] = v
		}
	}
	for _, d := range info.Datasets {
		if d.Name == chaosWindows && d.Watermark != nil && !d.Watermark.Equal(wm) {
			t.Errorf("%s: the status reports the watermark %v, want %v", chaosWindows, d.Watermark, wm)
		}
	}
	bad = nil
	gotWin := map[winKey]winVal{}
	for _, r := range readRows(t, store, chaosWindows) {
		w := r["w"].(map[string]any)
		k := winKey{jsonTime(t, w["start"]), r["k"].(string)}
		v := winVal{jsonInt(t, r["cnt"]), jsonInt(t, r["total"])}
		if e := jsonTime(t, w["end"]); !e.Equal(k.start.Add(chaosWindow)) {
			bad = append(bad, fmt.Sprintf("window %v–%v is not one second long", k.start, e))
		}
		want, ok := wantWin[k]
		switch {
		case gotWin[k] != (winVal{}):
			bad = append(bad, fmt.Sprintf("window %v %s emitted twice: %+v and %+v", k.start, k.k, gotWin[k], v))
		case !ok:
			bad = append(bad, fmt.Sprintf("window %v %s %+v is not closed by the watermark %v or has no events", k.start, k.k, v, wm))
		case v != want:
			bad = append(bad, fmt.Sprintf("window %v %s: %+v, want %+v", k.start, k.k, v, want))
		}
		gotWin[k] = v
	}
	for k, v := range wantWin {
		if _, ok := gotWin[k]; !ok {
			bad = append(bad, fmt.Sprintf("missing window %v %s %+v", k.start, k.k, v))
		}
	}
	reportBad(t, chaosWindows, bad)
	t.Logf("%s: %d windows, as expected (watermark %v, %d windows still open)", chaosWindows, len(gotWin), wm.Format(time.TimeOnly), len(all)-len(wantWin))

	// The materialized view: the windowed table summed per key.
	type keyVal struct{ cnt, total, windows int64 }
	wantKey := map[string]keyVal{}
	for k, v := range gotWin {
		kv := wantKey[k.k]
		kv.cnt += v.cnt
		kv.total += v.total
		kv.windows++
		wantKey[k.k] = kv
	}
	gotKey := map[string]keyVal{}
	for _, r := range readRows(t, store, chaosPerKey) {
		k := r["k"].(string)
		if _, dup := gotKey[k]; dup {
			t.Errorf("%s: key %s twice", chaosPerKey, k)
		}
		gotKey[k] = keyVal{jsonInt(t, r["cnt"]), jsonInt(t, r["total"]), jsonInt(t, r["windows"])}
	}
	if fmt.Sprint(gotKey) != fmt.Sprint(wantKey) {
		t.Errorf("%s: %v, want %v", chaosPerKey, gotKey, wantKey)
	}
}

// pipelineCaughtUp reports whether each dataset of the chaos pipeline has
// committed a checkpoint at its sources' current snapshots, and the
// pipeline is running without error.
func pipelineCaughtUp(t *testing.T, api *sluicetest.Client) (bool, string) {
	ctx := sluicetest.Context(t)
	var info pipeline.Info
	if err := api.Do(ctx, "GET", "/api/v1/pipelines/"+url.PathEscape(chaosPipeline), nil, http.StatusOK, &info); err != nil {
		return false, err.Error()
	}
	if info.State != "running" || info.Error != "" {
		t.Fatalf("pipeline %s is %s: %s", chaosPipeline, info.State, info.Error)
	}
	snap := map[string]int64{}
	var state []string
	for _, name := range []string{chaosIngest, chaosKept, chaosWindows, chaosPerKey} {
		tb, err := api.Table(ctx, name)
		if err != nil {
			return false, err.Error()
		}
		snap[name] = tb.SnapshotID
		state = append(state, fmt.Sprintf("%s: %d rows, snapshot %d, checkpoint %s", name, tb.Rows, tb.SnapshotID, tb.SnapshotProperties["sluice.pipeline.sources"]))
		src := map[string]string{chaosKept: chaosIngest, chaosWindows: chaosKept, chaosPerKey: chaosWindows}[name]
		if src == "" {
			continue
		}
		var cp map[string]int64
		_ = json.Unmarshal([]byte(tb.SnapshotProperties["sluice.pipeline.sources"]), &cp)
		if cp[src] != snap[src] {
			return false, strings.Join(state, "; ")
		}
	}
	return true, ""
}

// topicEnd returns partition 0's end offset.
func topicEnd(t *testing.T, addr, topic string) int64 {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(sluicetest.Context(t), topic)
	if err != nil {
		t.Fatalf("listing end offsets: %v", err)
	}
	o, ok := ends.Lookup(topic, 0)
	if !ok || o.Err != nil {
		t.Fatalf("end offset of %s/0: %v", topic, o.Err)
	}
	return o.Offset
}

// readRows reads every row of table name, JSON-decoded (numbers as
// json.Number).
func readRows(t *testing.T, store *table.Store, name string) []map[string]any {
	t.Helper()
	var out []map[string]any
	eachBatch(t, store, name, table.ScanOptions{}, func(rec arrow.RecordBatch) {
		var buf bytes.Buffer
		if err := array.RecordToJSON(rec, &buf); err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(&buf)
		dec.UseNumber()
		for dec.More() {
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				t.Fatalf("decoding a row of %s: %v", name, err)
			}
			out = append(out, m)
		}
	})
	return out
}

func jsonInt(t *testing.T, v any) int64 {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("%v (%T) is not a number", v, v)
	}
	i, err := n.Int64()
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func jsonTime(t *testing.T, v any) time.Time {
	t.Helper()
	s, _ := v.(string)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999Z0700", "2006-01-02 15:04:05.999999999"} {
		if tm, err := time.Parse(layout, s); err == nil {
			return tm.UTC()
		}
	}
	t.Fatalf("%v (%T) is not a timestamp", v, v)
	return time.Time{}
}

func reportBad(t *testing.T, name string, bad []string) {
	t.Helper()
	if len(bad) == 0 {
		return
	}
	slices.Sort(bad)
	if len(bad) > 20 {
		bad = append(bad[:20], fmt.Sprintf("... and %d more", len(bad)-20))
	}
	t.Errorf("%s:\n%s", name, strings.Join(bad, "\n"))
}

// startEventProducer writes events n = 1, 2, ... to a one-partition
// topic, twenty every 10ms, with event times in production order. A batch
// that fails (no process serves the broker) is not retried: its events may
// or may not be in the topic, and the next batch goes on with the next
// numbers.
func startEventProducer(t *testing.T, addr, topic string) *chaosProducer {
	n := 0
	return startChaosProducer(t, addr, topic, producerOptions{
		every:   10 * time.Millisecond,
		timeout: 2 * time.Second,
		// Without idempotence, a record times out even while its request
		// is in flight; one request at a time keeps the batches in order.
		client: []kgo.Opt{kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(1),
			kgo.RecordDeliveryTimeout(time.Second), kgo.RecordRetries(5),
			kgo.MetadataMinAge(50 * time.Millisecond), kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
			kgo.DialTimeout(time.Second)},
		tolerateFailures: true,
		batch: func() ([]*kgo.Record, []ackedRecord) {
			recs := make([]*kgo.Record, 20)
			meta := make([]ackedRecord, len(recs))
			for i := range recs {
				n++
				meta[i] = ackedRecord{valid: true, id: fmt.Sprintf("e-%06d", n)}
				recs[i] = &kgo.Record{Value: fmt.Appendf(nil, `{"id":%q,"n":%d,"k":"k%d","at":%q}`,
					meta[i].id, n, n%3, chaosEventTime(n).Format(time.RFC3339Nano))}
			}
			return recs, meta
		},
	})
}
