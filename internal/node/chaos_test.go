package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/broker"
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
	if testing.Short() {
		t.Skip("builds the sluice binary and kills it repeatedly")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SLUICE_CHAOS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("SLUICE_CHAOS_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d (replay with SLUICE_CHAOS_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x5ee0))

	bin := buildSluice(t)
	b, err := broker.Start(broker.Options{Addr: "127.0.0.1:0"}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	const topic = "events"
	admin, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := broker.CreateTopic(sluicetest.Context(t), admin, topic, 3); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	logPath := filepath.Join(dir, "sluice.log")
	spawn := func() *child {
		return startChild(t, bin, logPath, "up", "--no-broker", "--broker-addr", b.Addr(), "--data", data, "--http", "127.0.0.1:0", "--log-level", "debug")
	}
	t.Cleanup(func() {
		if t.Failed() {
			logTail(t, logPath, 80)
		}
	})

	// 1. A kill during the very first start, on a fresh data directory.
	c := spawn()
	time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond) // the kill schedule, not synchronisation
	t.Logf("kill 1: %s into the first start (up: %v)", c.age(), c.isUp())
	c.kill(t)

	// 2. Start, create the stream, and kill as soon as the first records
	// are acknowledged: before the first commit.
	c = spawn()
	api := sluicetest.NewClient(c.waitUp(t), "chaos")
	api.MustCreateStream(t, fmt.Sprintf(`name: main.chaos.events
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
`, topic, b.Addr()))
	p := startProducer(t, b.Addr(), topic)
	select {
	case <-p.firstAck:
	case <-p.done:
		_, err := p.stop()
		t.Fatalf("producer stopped before its first acknowledgement: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no record acknowledged after 30s")
	}
	c.kill(t)
	withStore(t, data, func(s *table.Store) {
		rows := scanTable(t, s, "main.chaos.events_ingestion", "id")
		t.Logf("kill 2: right after the first acknowledged records; the ingestion table then held %d rows", len(rows))
	})

	// 3. Kills at random moments while the producer keeps writing.
	kills := 5 + rng.IntN(4)
	for k := range kills {
		c = spawn()
		time.Sleep(time.Duration(50+rng.IntN(650)) * time.Millisecond) // the kill schedule
		t.Logf("kill %d: %s after start (up: %v), %d records acknowledged so far", k+3, c.age(), c.isUp(), p.count())
		c.kill(t)
	}

	// 4. The last start: produce a little more, stop producing, and wait
	// for everything to be committed.
	c = spawn()
	api = sluicetest.NewClient(c.waitUp(t), "chaos")
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
	if err := c.term(30 * time.Second); err != nil {
		t.Fatalf("stopping sluice with SIGTERM: %v", err)
	}

	// Where each process resumed: the offsets its ingestion started from.
	if b, err := os.ReadFile(logPath); err == nil {
		var resumed []string
		commits, skipped := 0, 0
		for _, l := range strings.Split(string(b), "\n") {
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
	}

	// 5. Read the tables directly and compare.
	store := openStore(t, data)
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

// buildSluice builds cmd/sluice into a temporary directory.
func buildSluice(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		out, gerr := exec.Command("go", "env", "GOROOT").Output()
		if gerr != nil {
			t.Fatalf("finding the go command: %v", err)
		}
		goBin = filepath.Join(strings.TrimSpace(string(out)), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "sluice")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, "./cmd/sluice")
	cmd.Dir = sluicetest.RepoRoot(t)
	began := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/sluice: %v\n%s", err, out)
	}
	t.Logf("built sluice in %v", time.Since(began).Round(time.Millisecond))
	return bin
}

// child is a sluice process.
type child struct {
	cmd     *exec.Cmd
	started time.Time
	up      chan string // receives the REST API URL once it is up
	exited  chan struct{}
	waitErr error

	mu  sync.Mutex
	url string
}

// startChild starts bin with args, its stderr appended to logPath, and
// kills it at cleanup if it is still running.
func startChild(t *testing.T, bin, logPath string, args ...string) *child {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(logf, "=== %s %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(args, " "))
	c := &child{up: make(chan string, 1), exited: make(chan struct{})}
	c.cmd = exec.Command(bin, args...)
	c.cmd.Stdout = &lineWriter{line: c.onLine}
	c.cmd.Stderr = logf
	c.cmd.WaitDelay = 5 * time.Second
	if err := c.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("starting %s: %v", bin, err)
	}
	c.started = time.Now()
	go func() {
		c.waitErr = c.cmd.Wait()
		logf.Close()
		close(c.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-c.exited:
		default:
			c.cmd.Process.Kill()
			<-c.exited
		}
	})
	return c
}

const upPrefix = "sluice is up: REST API "

func (c *child) onLine(line string) {
	rest, ok := strings.CutPrefix(line, upPrefix)
	if !ok {
		return
	}
	url, _, _ := strings.Cut(rest, ",")
	c.mu.Lock()
	c.url = url
	c.mu.Unlock()
	c.up <- url
}

func (c *child) isUp() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.url != ""
}

func (c *child) age() time.Duration { return time.Since(c.started).Round(time.Millisecond) }

// waitUp waits (bounded) for the process to report its REST API URL.
func (c *child) waitUp(t *testing.T) string {
	t.Helper()
	select {
	case url := <-c.up:
		return url
	case <-c.exited:
		t.Fatalf("sluice exited before it was up: %v", c.waitErr)
	case <-time.After(30 * time.Second):
		t.Fatal("sluice not up after 30s")
	}
	return ""
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL: %v", err)
	}
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("process still running 10s after SIGKILL")
	}
}

// term sends SIGTERM and waits (bounded) for a clean exit.
func (c *child) term(timeout time.Duration) error {
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-c.exited:
		return c.waitErr
	case <-time.After(timeout):
		return fmt.Errorf("still running %v after SIGTERM", timeout)
	}
}

// lineWriter calls line for every complete line written to it.
type lineWriter struct {
	buf  []byte
	line func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.line(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}

func logTail(t *testing.T, path string, n int) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	t.Logf("last %d lines of %s:\n%s", len(lines), path, strings.Join(lines, "\n"))
}

type pos struct {
	partition int32
	offset    int64
}

// ackedRecord is a record the broker acknowledged.
type ackedRecord struct {
	partition int32
	offset    int64
	valid     bool
	id        string
	value     string
}

// producer writes keyed records to a topic without pause, about one in
// eleven invalid, and records what the broker acknowledged.
type producer struct {
	firstAck chan struct{}
	quit     chan struct{}
	done     chan struct{}

	mu    sync.Mutex
	acked []ackedRecord
	err   error
}

func startProducer(t *testing.T, addr, topic string) *producer {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(20))
	if err != nil {
		t.Fatal(err)
	}
	p := &producer{firstAck: make(chan struct{}), quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		defer cl.Close()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		n := 0
		for first := true; ; first = false {
			select {
			case <-p.quit:
				return
			case <-tick.C:
			}
			recs := make([]*kgo.Record, 10)
			valid := make([]bool, len(recs))
			ids := make([]string, len(recs))
			for i := range recs {
				n++
				ids[i] = fmt.Sprintf("r-%06d", n)
				var v string
				switch {
				case n%11 != 0:
					v = fmt.Sprintf(`{"id":%q,"n":%d,"at":"2026-11-23T10:00:00Z"}`, ids[i], n)
					valid[i] = true
				case n%3 == 0:
					v = fmt.Sprintf(`{"id":%q,"n":"not a number"}`, ids[i])
				case n%3 == 1:
					v = fmt.Sprintf(`{"n":%d}`, n) // no id
				default:
					v = fmt.Sprintf(`not json %d`, n)
				}
				recs[i] = &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%02d", n%37), Value: []byte(v)}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := cl.ProduceSync(ctx, recs...).FirstErr()
			cancel()
			p.mu.Lock()
			if err != nil {
				p.err = fmt.Errorf("producing record %d: %w", n, err)
				p.mu.Unlock()
				return
			}
			for i, r := range recs {
				p.acked = append(p.acked, ackedRecord{r.Partition, r.Offset, valid[i], ids[i], string(r.Value)})
			}
			p.mu.Unlock()
			if first {
				close(p.firstAck)
			}
		}
	}()
	t.Cleanup(func() { p.stop() })
	return p
}

func (p *producer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.acked)
}

// stop stops producing and returns every acknowledged record.
func (p *producer) stop() ([]ackedRecord, error) {
	select {
	case <-p.quit:
	default:
		close(p.quit)
	}
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acked, p.err
}
