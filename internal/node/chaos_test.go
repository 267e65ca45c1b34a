package node_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/table"
	"github.com/sluice-dev/sluice/internal/testutil/sluicetest"
)

// TestSIGKILLExactlyOnce checks the promise "killing the process with
// SIGKILL at any moment and restarting it leaves every produced record in
// the table exactly once". A broker runs in the test process; the sluice
// binary runs as a child on its own data directory and is killed with
// SIGKILL at seeded pseudo-random moments (during its very first start,
// before its first commit, and then while a producer writes valid and
// invalid records without pause), and restarted each time. In the end,
// every acknowledged valid record is in the ingestion table exactly once,
// every invalid one in the quarantine table exactly once, and nothing else
// is. SLUICE_CHAOS_SEED=N replays a run.
func TestSIGKILLExactlyOnce(t *testing.T) {
	rng := startChaosTest(t, 0x5ee0)
	const topic = "events"
	proc, brokerAddr := newSluiceWithBroker(t, topic)

	// 1. A kill during the very first start, on a fresh data directory.
	proc.start()
	time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond) // the kill schedule, not synchronisation
	t.Logf("kill 1: %s into the first start (up: %v)", proc.age(), proc.isUp())
	proc.kill()

	// 2. Start, create the stream, and kill as soon as the first records
	// are acknowledged: before the first commit.
	proc.start()
	api := proc.waitUp()
	api.MustCreateStream(t, chaosStreamSpec(topic, brokerAddr, ""))
	p := startMixedProducer(t, brokerAddr, topic)
	select {
	case <-p.firstAck:
	case <-p.done:
		_, err := p.stop()
		t.Fatalf("producer stopped before its first acknowledgement: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no record acknowledged after 30s")
	}
	proc.kill()
	withStore(t, proc.data, func(s *table.Store) {
		rows := scanTable(t, s, "main.chaos.events_ingestion", "id")
		t.Logf("kill 2: right after the first acknowledged records; the ingestion table then held %d rows", len(rows))
	})

	// 3. Kills at random moments while the producer keeps writing.
	kills := 5 + rng.IntN(4)
	for k := range kills {
		proc.start()
		time.Sleep(time.Duration(50+rng.IntN(650)) * time.Millisecond) // the kill schedule
		t.Logf("kill %d: %s after start (up: %v), %d records acknowledged so far", k+3, proc.age(), proc.isUp(), p.count())
		proc.kill()
	}

	// 4. The last start: produce a little more, stop producing, and wait
	// for everything to be committed.
	proc.start()
	api = proc.waitUp()
	time.Sleep(200 * time.Millisecond) // let the producer write while this process runs
	acked, err := p.stop()
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	var wantGood, wantBad int64
	for _, r := range acked {
		if r.valid {
			wantGood++
		} else {
			wantBad++
		}
	}
	t.Logf("%d records acknowledged: %d valid, %d invalid", len(acked), wantGood, wantBad)
	sluicetest.Eventually(t, 60*time.Second, "ingesting every acknowledged record", func() (bool, string) {
		ctx := sluicetest.Context(t)
		ing, err1 := api.Table(ctx, "main.chaos.events_ingestion")
		q, err2 := api.Table(ctx, "main.chaos.events_ingestion_quarantine")
		if err := errors.Join(err1, err2); err != nil {
			return false, err.Error()
		}
		st := fmt.Sprintf("ingestion %d/%d rows, quarantine %d/%d", ing.Rows, wantGood, q.Rows, wantBad)
		return ing.Rows >= wantGood && q.Rows >= wantBad, st
	})
	if err := proc.term(30 * time.Second); err != nil {
		t.Fatalf("stopping sluice with SIGTERM: %v", err)
	}

	// Where each process resumed: the offsets its ingestion started from.
	var resumed []string
	commits, skipped := 0, 0
	for _, l := range strings.Split(proc.log(), "\n") {
		if strings.Contains(l, `msg="ingestion started"`) {
			_, o, _ := strings.Cut(l, "offsets=")
			resumed = append(resumed, o)
		}
		if strings.Contains(l, `msg="committed batch"`) {
			commits++
			if _, s, ok := strings.Cut(l, " skipped="); ok {
				n, _ := strconv.Atoi(strings.Fields(s)[0])
				skipped += n
			}
		}
	}
	t.Logf("ingestion resumed %d times, from offsets: %s", len(resumed), strings.Join(resumed, " | "))
	t.Logf("%d batches committed; %d replayed records skipped as already quarantined (kills between the quarantine and the ingestion commit)", commits, skipped)

	// 5. Read the tables directly and compare.
	store := openStore(t, proc.data)
	want := map[pos]ackedRecord{}
	for _, r := range acked {
		want[pos{r.partition, r.offset}] = r
	}
	check := func(name string, rows []tableRow, valid bool) {
		seen := map[pos]bool{}
		var bad []string
		for _, r := range rows {
			k := pos{r.Partition, r.Offset}
			a, ok := want[k]
			switch {
			case r.Topic != topic:
				bad = append(bad, fmt.Sprintf("row from another topic: %v", r))
			case seen[k]:
				bad = append(bad, fmt.Sprintf("duplicate: %v", r))
			case !ok:
				bad = append(bad, fmt.Sprintf("row that no acknowledged record explains: %v", r))
			case a.valid != valid:
				bad = append(bad, fmt.Sprintf("record %v (valid=%v) in the wrong table", r, a.valid))
			case valid && r.Value != a.id, !valid && r.Value != a.value:
				bad = append(bad, fmt.Sprintf("row %v holds another record than the one acknowledged there (%s %q)", r, a.id, a.value))
			}
			seen[k] = true
		}
		for k, a := range want {
			if a.valid == valid && !seen[k] {
				bad = append(bad, fmt.Sprintf("missing: %d@%d %s", k.partition, k.offset, a.id))
			}
		}
		if len(bad) > 0 {
			if len(bad) > 20 {
				bad = append(bad[:20], fmt.Sprintf("... and %d more", len(bad)-20))
			}
			t.Errorf("%s (%d rows):\n%s", name, len(rows), strings.Join(bad, "\n"))
		}
	}
	for _, name := range []string{"main.chaos.events_ingestion", "main.chaos.events_ingestion_quarantine"} {
		id, _ := ident.Parse(name)
		tbl, err := store.Load(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		live, err := tbl.DataFiles(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		all, _ := filepath.Glob(filepath.Join(tbl.Location(), "data", "*.parquet"))
		t.Logf("%s: %d snapshots, %d live data files, %d orphans (from kills between writing and committing)",
			name, tbl.SnapshotCount(), len(live), len(all)-len(live))
	}
	check("ingestion table", scanTable(t, store, "main.chaos.events_ingestion", "id"), true)
	check("quarantine table", scanTable(t, store, "main.chaos.events_ingestion_quarantine", ""), false)
}

// chaosStreamSpec is the stream of the chaos tests that run their own
// broker at bootstrap: JSON records of topic with an id, a number and a
// time, ingested into main.chaos.events_ingestion; extra adds lines to the
// ingestion settings.
func chaosStreamSpec(topic, bootstrap, extra string) string {
	return fmt.Sprintf(`name: main.chaos.events
source: {kafka: {subscribe: %s}}
connection: {bootstrap_servers: "%s"}
schema:
  payload:
    json_schema:
      type: object
      properties:
        id: {type: string}
        n:  {type: integer}
        at: {type: string, format: date-time}
      required: [id, n]
ingestion:
  destination: main.chaos.events_ingestion
  commit_interval: 100ms
  commit_max_records: 500
%s`, topic, bootstrap, extra)
}

// startMixedProducer writes keyed records to topic without pause, ten
// every 5ms, about one in eleven invalid (a wrong type, no id, or not
// JSON). Every record is retried until it is acknowledged or fails for
// good, and the first failure stops the producer.
func startMixedProducer(t *testing.T, addr, topic string) *chaosProducer {
	n := 0
	return startChaosProducer(t, addr, topic, producerOptions{
		every:   5 * time.Millisecond,
		timeout: 30 * time.Second,
		client:  []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(20)},
		batch: func() ([]*kgo.Record, []ackedRecord) {
			recs := make([]*kgo.Record, 10)
			meta := make([]ackedRecord, len(recs))
			for i := range recs {
				n++
				id := fmt.Sprintf("r-%06d", n)
				var v string
				switch {
				case n%11 != 0:
					v = fmt.Sprintf(`{"id":%q,"n":%d,"at":"2026-11-23T10:00:00Z"}`, id, n)
					meta[i].valid = true
				case n%3 == 0:
					v = fmt.Sprintf(`{"id":%q,"n":"not a number"}`, id)
				case n%3 == 1:
					v = fmt.Sprintf(`{"n":%d}`, n) // no id
				default:
					v = fmt.Sprintf(`not json %d`, n)
				}
				meta[i].id = id
				recs[i] = &kgo.Record{Key: fmt.Appendf(nil, "k%02d", n%37), Value: []byte(v)}
			}
			return recs, meta
		},
	})
}
