// Command freshness measures end-to-end feature freshness: the time from a
// record's produce call to the first online read that serves its effect,
// through a real sluice node (issue 4: p99 ≤ 250 ms at 20,000 events/s).
//
// Each run starts a node in this process (embedded broker on 127.0.0.1:0,
// a temporary data directory, the embedded online store), creates through
// the REST API a topic, a stream (JSON payload user_id, event_ts, revenue,
// seq; the smallest commit_interval) and a windowed feature table over its
// ingestion table (count and sum over 1h per user_id, and last_seq = last
// of value.seq), online. An open-loop franz-go producer then sends -rate
// events/s over -users users for -warmup + -duration: event k is due at
// start + k/rate and carries seq = k. -probe-rate of them per second go to
// dedicated probe users instead; a prober goroutine polls
// POST /get-online-features over HTTP for all probe users back to back,
// and a probe's freshness is the time from its produce call to the end of
// the first response whose last_seq for its user is ≥ its seq. Probes sent
// during the warm-up are not counted.
//
// Stages of each probe, to see where the latency goes: produce call →
// broker ack (producer callback), → ingested (the stream's committed
// offset, polled in process every millisecond, passes the probe's offset:
// the ingestion table's Iceberg commit), → served (the pipeline's poll
// wait and round, its feature-log commit and the online sync, plus the
// read).
//
//	go run ./bench/freshness                            # 20,000 events/s, 20 s, 3 runs
//	go run ./bench/freshness -rate 5000 -runs 1
//	go run ./bench/freshness -poll-interval 20ms        # the pipeline's idle poll (node default 200ms)
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/ingest"
	"github.com/sluice-dev/sluice/internal/node"
	"github.com/sluice-dev/sluice/internal/pipeline"
)

// Target from issue 4.
const (
	targetRate = 20000
	targetP99  = 250 * time.Millisecond
)

const (
	topic      = "events"
	streamName = "main.demo.events"
	tableName  = "main.features.user_activity"
)

type config struct {
	rate           int
	duration       time.Duration
	warmup         time.Duration
	runs           int
	users          int
	probeUsers     int
	probeRate      int
	partitions     int
	commitInterval time.Duration
	pollInterval   time.Duration
	fetchMaxWait   time.Duration
	probeEvery     time.Duration
	linger         time.Duration
	cpuprofile     string
	verbose        bool
	trace          string
}

func main() {
	var c config
	flag.IntVar(&c.rate, "rate", targetRate, "events produced per second (open loop)")
	flag.DurationVar(&c.duration, "duration", 20*time.Second, "measured production time per run (after the warm-up)")
	flag.DurationVar(&c.warmup, "warmup", 5*time.Second, "production at the same rate before the measurement; its probes are not counted")
	flag.IntVar(&c.runs, "runs", 3, "runs, each with a fresh node; results are medians")
	flag.IntVar(&c.users, "users", 1000, "users the events are spread over")
	flag.IntVar(&c.probeUsers, "probe-users", 20, "dedicated probe users")
	flag.IntVar(&c.probeRate, "probe-rate", 20, "probe events per second (part of -rate)")
	flag.IntVar(&c.partitions, "partitions", 1, "partitions of the topic")
	flag.DurationVar(&c.commitInterval, "commit-interval", 50*time.Millisecond, "the stream's ingestion.commit_interval (any positive duration is valid; 50ms measured best: 1ms queues batches behind the committer, 100ms waits longer)")
	flag.DurationVar(&c.pollInterval, "poll-interval", 0, "pipeline.ManagerOptions.PollInterval (0: the node's default, 200ms)")
	flag.DurationVar(&c.fetchMaxWait, "fetch-max-wait", 0, "ingest.Options.FetchMaxWait (0: the default, 500ms)")
	flag.DurationVar(&c.probeEvery, "probe-interval", 2*time.Millisecond, "pause between two reads of the prober")
	flag.DurationVar(&c.linger, "linger", 0, "the producer's linger")
	flag.StringVar(&c.cpuprofile, "cpuprofile", "", "CPU profile of the first run's measurement")
	flag.BoolVar(&c.verbose, "v", false, "node logs at Debug")
	flag.StringVar(&c.trace, "trace", "", "write every measured probe of run 1 to this file: sent (ms since the measurement began), then ack, ingested and served (ms after sent)")
	flag.Parse()
	if c.rate <= 0 || c.probeRate <= 0 || c.probeRate > c.rate || c.users <= 0 || c.probeUsers <= 0 || c.runs <= 0 {
		log.Fatal("bad flags")
	}
	fmt.Printf("load average before: %s", loadavg())
	poll := "default (200ms)"
	if c.pollInterval > 0 {
		poll = c.pollInterval.String()
	}
	fmt.Printf("rate %d events/s over %d users (+%d probe users, %d probes/s), %d partition(s), %v + %v warm-up per run, %d runs; commit_interval %v, pipeline poll interval %s; GOMAXPROCS %d\n",
		c.rate, c.users, c.probeUsers, c.probeRate, c.partitions, c.duration, c.warmup, c.runs, c.commitInterval, poll, runtime.GOMAXPROCS(0))

	var results []result
	for run := 1; run <= c.runs; run++ {
		r, err := runOnce(c, run)
		if err != nil {
			log.Fatalf("run %d: %v", run, err)
		}
		results = append(results, r)
		fmt.Printf("run %d: freshness p50 %.0f p99 %.0f max %.0f ms (%d probes, %d unseen); achieved %.0f events/s; stages p50/p99 ms: ack %.0f/%.0f, ingested %.0f/%.0f, ingested→served %.0f/%.0f; ingest commits %d (%.1f/s, mean %.0f ms); load %s",
			run, r.p50, r.p99, r.max, r.probes, r.unseen, r.rate, r.ackP50, r.ackP99, r.ingP50, r.ingP99, r.srvP50, r.srvP99,
			r.commits, float64(r.commits)/c.duration.Seconds(), r.commitMeanMs, loadavg())
	}
	med := func(f func(result) float64) float64 {
		xs := make([]float64, len(results))
		for i, r := range results {
			xs[i] = f(r)
		}
		return median(xs)
	}
	p99 := med(func(r result) float64 { return r.p99 })
	fmt.Printf("\nmedians of %d runs: stages p50/p99 ms: produce→ack %.0f/%.0f, produce→ingested %.0f/%.0f, ingested→served %.0f/%.0f\n", c.runs,
		med(func(r result) float64 { return r.ackP50 }), med(func(r result) float64 { return r.ackP99 }),
		med(func(r result) float64 { return r.ingP50 }), med(func(r result) float64 { return r.ingP99 }),
		med(func(r result) float64 { return r.srvP50 }), med(func(r result) float64 { return r.srvP99 }))
	fmt.Printf("BENCH freshness_p50_ms %.0f ms\n", med(func(r result) float64 { return r.p50 }))
	fmt.Printf("BENCH freshness_p99_ms %.0f ms\n", p99)
	fmt.Printf("BENCH freshness_max_ms %.0f ms\n", med(func(r result) float64 { return r.max }))
	fmt.Printf("BENCH freshness_rate_events_per_s %.0f events/s\n", med(func(r result) float64 { return r.rate }))
	unseen := 0
	for _, r := range results {
		unseen += r.unseen
	}
	rate := med(func(r result) float64 { return r.rate })
	verdict := "PASS"
	if p99 > float64(targetP99/time.Millisecond) || unseen > 0 || rate < 0.98*targetRate || c.rate < targetRate {
		verdict = "MISS"
	}
	fmt.Printf("target freshness p99 ≤ %v at %d events/s: %s (median p99 %.0f ms at %.0f events/s achieved; %d probes never served)\n",
		targetP99, targetRate, verdict, p99, rate, unseen)
	fmt.Printf("load average after: %s", loadavg())
}

type result struct {
	p50, p99, max  float64
	ackP50, ackP99 float64
	ingP50, ingP99 float64
	srvP50, srvP99 float64
	probes, unseen int
	rate           float64
	commits        int64
	commitMeanMs   float64
}

// writeTrace writes one line per measured probe: when it was sent (ms
// since the measurement began) and how long after that it was acked,
// ingested and served (ms; -1 for never).
func writeTrace(path string, all []*probe, start time.Time) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	after := func(p *probe, t time.Time) float64 {
		if t.IsZero() {
			return -1
		}
		return float64(t.Sub(p.sent)) / float64(time.Millisecond)
	}
	fmt.Fprintf(f, "# measurement began %s\nsent_ms ack_ms ingested_ms served_ms\n", start.Format("15:04:05.000"))
	for _, p := range all {
		if p.measured {
			fmt.Fprintf(f, "%.1f %.1f %.1f %.1f\n", float64(p.sent.Sub(start))/float64(time.Millisecond), after(p, p.acked), after(p, p.ingested), after(p, p.served))
		}
	}
	return f.Close()
}

// probe is one probe event.
type probe struct {
	user      int
	seq       int64
	partition int32
	offset    int64 // -1 until acked
	sent      time.Time
	acked     time.Time
	ingested  time.Time
	served    time.Time
	measured  bool
}

type tracker struct {
	mu      sync.Mutex
	all     []*probe
	pending [][]*probe // per probe user, not yet served, by seq
	unacked []*probe   // acked but not ingested
}

// unserved counts the probes sent and not yet served.
func (tr *tracker) unserved() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, ps := range tr.pending {
		n += len(ps)
	}
	return n
}

func runOnce(c config, run int) (result, error) {
	var res result
	dir, err := os.MkdirTemp("", "sluice-bench-freshness-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	lv := slog.LevelWarn
	if c.verbose {
		lv = slog.LevelDebug
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nd, err := node.Start(ctx, node.Options{DataDir: dir, BrokerAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		Ingest:    ingest.Options{FetchMaxWait: c.fetchMaxWait},
		Pipelines: pipeline.ManagerOptions{PollInterval: c.pollInterval}},
		slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv})))
	if err != nil {
		return res, err
	}
	defer nd.Close()
	base := nd.URL()
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}

	if err := api(hc, base, "POST", "/api/v1/topics", map[string]any{"name": topic, "partitions": c.partitions}, 201); err != nil {
		return res, err
	}
	streamSpec := map[string]any{
		"name":       streamName,
		"source":     map[string]any{"kafka": map[string]any{"subscribe": topic}},
		"connection": map[string]any{"bootstrap_servers": nd.BrokerAddr()},
		"schema": map[string]any{"payload": map[string]any{"json_schema": map[string]any{
			"type": "object",
			"properties": map[string]any{
				"user_id":  map[string]any{"type": "string"},
				"event_ts": map[string]any{"type": "string", "format": "date-time"},
				"revenue":  map[string]any{"type": "number"},
				"seq":      map[string]any{"type": "integer"},
			},
		}}},
		"ingestion": map[string]any{"destination": "main.demo.events_ingestion", "commit_interval": c.commitInterval.String()},
	}
	if err := api(hc, base, "POST", "/api/v1/streams", streamSpec, 201); err != nil {
		return res, err
	}
	ftSpec := map[string]any{
		"name":      tableName,
		"source":    "main.demo.events_ingestion",
		"entity":    map[string]string{"user_id": "value.user_id"},
		"timestamp": "value.event_ts",
		"features": []map[string]string{
			{"name": "event_count_1h", "function": "count", "window": "1h"},
			{"name": "revenue_1h", "function": "sum", "column": "value.revenue", "window": "1h"},
			{"name": "last_seq", "function": "last", "column": "value.seq"},
		},
		"ttl":    "7d",
		"online": true,
	}
	if err := api(hc, base, "POST", "/api/v1/feature-tables", ftSpec, 201); err != nil {
		return res, err
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(nd.BrokerAddr()), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(c.linger),
		kgo.MaxBufferedRecords(1_000_000))
	if err != nil {
		return res, err
	}
	defer cl.Close()

	users := make([][]byte, c.users)
	for i := range users {
		users[i] = []byte("u" + strconv.Itoa(i))
	}
	probeNames := make([]string, c.probeUsers)
	probeKeys := make([][]byte, c.probeUsers)
	for i := range probeNames {
		probeNames[i] = "p" + strconv.Itoa(i)
		probeKeys[i] = []byte(probeNames[i])
	}
	tr := &tracker{pending: make([][]*probe, c.probeUsers)}
	rng := rand.New(rand.NewPCG(uint64(run), 7))
	var acked, ackErrs atomic.Int64
	var firstErr atomic.Value
	var measuring atomic.Bool

	produce := func(seq int64, key []byte, pr *probe) {
		now := time.Now().UTC()
		v := make([]byte, 0, 128)
		v = append(v, `{"user_id":"`...)
		v = append(v, key...)
		v = append(v, `","event_ts":"`...)
		v = now.AppendFormat(v, time.RFC3339Nano)
		v = append(v, `","revenue":`...)
		v = strconv.AppendFloat(v, float64(rng.IntN(10000))/100, 'f', -1, 64)
		v = append(v, `,"seq":`...)
		v = strconv.AppendInt(v, seq, 10)
		v = append(v, '}')
		m := measuring.Load()
		if pr != nil {
			pr.sent, pr.measured = time.Now(), m
			tr.mu.Lock()
			tr.all = append(tr.all, pr)
			tr.pending[pr.user] = append(tr.pending[pr.user], pr)
			tr.mu.Unlock()
		}
		cl.Produce(ctx, &kgo.Record{Key: key, Value: v}, func(r *kgo.Record, err error) {
			if err != nil {
				ackErrs.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			if m {
				acked.Add(1)
			}
			if pr != nil {
				t := time.Now()
				tr.mu.Lock()
				pr.acked, pr.partition, pr.offset = t, r.Partition, r.Offset
				tr.unacked = append(tr.unacked, pr)
				tr.mu.Unlock()
			}
		})
	}

	// The prober: reads last_seq of every probe user, back to back.
	body, _ := json.Marshal(map[string]any{
		"features": []string{tableName + ":event_count_1h", tableName + ":revenue_1h", tableName + ":last_seq"},
		"entities": map[string][]string{"user_id": probeNames},
	})
	var reads, readErrs atomic.Int64
	read := func() ([]float64, error) {
		resp, err := hc.Post(base+"/get-online-features", "application/json", bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("get-online-features: status %d: %s", resp.StatusCode, b)
		}
		var out struct {
			Results []struct {
				Values []any `json:"values"`
			} `json:"results"`
		}
		if err := json.Unmarshal(b, &out); err != nil {
			return nil, err
		}
		if len(out.Results) != 4 || len(out.Results[3].Values) != c.probeUsers {
			return nil, fmt.Errorf("get-online-features: unexpected answer %s", b)
		}
		seqs := make([]float64, c.probeUsers)
		for i, v := range out.Results[3].Values {
			seqs[i] = -1
			if f, ok := v.(float64); ok {
				seqs[i] = f
			}
		}
		return seqs, nil
	}
	proberDone := make(chan struct{})
	stopProber := make(chan struct{})
	go func() {
		defer close(proberDone)
		for {
			select {
			case <-stopProber:
				return
			default:
			}
			seqs, err := read()
			t := time.Now()
			reads.Add(1)
			if err != nil {
				readErrs.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				time.Sleep(10 * time.Millisecond)
				continue
			}
			tr.mu.Lock()
			for u, s := range seqs {
				ps := tr.pending[u]
				i := 0
				for i < len(ps) && float64(ps[i].seq) <= s {
					ps[i].served = t
					i++
				}
				tr.pending[u] = ps[i:]
			}
			tr.mu.Unlock()
			time.Sleep(c.probeEvery)
		}
	}()
	// The ingestion watcher: when the stream's committed offsets pass a
	// probe's, the probe is in the ingestion table.
	ingDone := make(chan struct{})
	go func() {
		defer close(ingDone)
		for {
			select {
			case <-stopProber:
				return
			default:
			}
			st, err := nd.Streams.Status(ctx, streamName)
			t := time.Now()
			if err == nil {
				tr.mu.Lock()
				keep := tr.unacked[:0]
				for _, p := range tr.unacked {
					if off, ok := st.Offsets.Get(topic, p.partition); ok && off > p.offset {
						p.ingested = t
						continue
					}
					keep = append(keep, p)
				}
				tr.unacked = keep
				tr.mu.Unlock()
			}
			time.Sleep(time.Millisecond)
		}
	}()
	defer func() {
		select {
		case <-stopProber:
		default:
			close(stopProber)
		}
		<-proberDone
		<-ingDone
	}()

	// Wait until the pipeline serves: one probe event per probe user.
	setup := time.Now()
	for u := range c.probeUsers {
		produce(int64(u), probeKeys[u], &probe{user: u, seq: int64(u), offset: -1})
	}
	for {
		if tr.unserved() == 0 {
			break
		}
		if time.Since(setup) > 3*time.Minute {
			return res, fmt.Errorf("the first events were not served within 3 minutes (%v)", firstErr.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Printf("run %d: node up, first events served %.1f s after the first produce\n", run, time.Since(setup).Seconds())
	tr.mu.Lock()
	tr.all = nil
	tr.mu.Unlock()
	// Reads before the feature table's first commit answer 404: not counted.
	readErrs.Store(0)
	reads.Store(0)
	firstErr = atomic.Value{}
	commits0, commitSum0 := commitMetrics(hc, base)

	// Produce, open loop: event k is due at start + k/rate.
	every := int64(c.rate / c.probeRate)
	seq0 := int64(c.probeUsers)
	start := time.Now()
	total := c.warmup + c.duration
	var k, probeN int64
	var measureStart, measureEnd time.Time
	var prof bool
	for {
		el := time.Since(start)
		if el >= total {
			break
		}
		if !measuring.Load() && el >= c.warmup {
			measureStart = time.Now()
			measuring.Store(true)
			if c.cpuprofile != "" && run == 1 {
				f, err := os.Create(c.cpuprofile)
				if err != nil {
					return res, err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return res, err
				}
				prof = true
			}
		}
		due := int64(el.Seconds() * float64(c.rate))
		for ; k < due; k++ {
			seq := seq0 + k
			if k%every == 0 {
				u := int(probeN % int64(c.probeUsers))
				probeN++
				produce(seq, probeKeys[u], &probe{user: u, seq: seq, offset: -1})
				continue
			}
			produce(seq, users[rng.IntN(c.users)], nil)
		}
		time.Sleep(500 * time.Microsecond)
	}
	measureEnd = time.Now()
	measuring.Store(false)
	commits1, commitSum1 := commitMetrics(hc, base)
	if prof {
		pprof.StopCPUProfile()
	}
	if err := cl.Flush(ctx); err != nil {
		return res, err
	}

	// Wait for the last probes.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if tr.unserved() == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stopProber)
	<-proberDone
	<-ingDone

	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	var fresh, ack, ing, srv []float64
	tr.mu.Lock()
	for _, p := range tr.all {
		if !p.measured {
			continue
		}
		res.probes++
		if p.served.IsZero() {
			res.unseen++
			continue
		}
		fresh = append(fresh, ms(p.served.Sub(p.sent)))
		if !p.acked.IsZero() {
			ack = append(ack, ms(p.acked.Sub(p.sent)))
		}
		if !p.ingested.IsZero() {
			ing = append(ing, ms(p.ingested.Sub(p.sent)))
			srv = append(srv, ms(p.served.Sub(p.ingested)))
		}
	}
	if c.trace != "" && run == 1 {
		if err := writeTrace(c.trace, tr.all, measureStart); err != nil {
			tr.mu.Unlock()
			return res, err
		}
	}
	tr.mu.Unlock()
	if len(fresh) == 0 {
		return res, fmt.Errorf("no probe was served (%v)", firstErr.Load())
	}
	res.p50, res.p99, res.max = quantile(fresh, 0.5), quantile(fresh, 0.99), quantile(fresh, 1)
	res.ackP50, res.ackP99 = quantile(ack, 0.5), quantile(ack, 0.99)
	res.ingP50, res.ingP99 = quantile(ing, 0.5), quantile(ing, 0.99)
	res.srvP50, res.srvP99 = quantile(srv, 0.5), quantile(srv, 0.99)
	res.rate = float64(acked.Load()) / measureEnd.Sub(measureStart).Seconds()
	res.commits = commits1 - commits0
	if res.commits > 0 {
		res.commitMeanMs = (commitSum1 - commitSum0) * 1000 / float64(res.commits)
	}
	if n := ackErrs.Load() + readErrs.Load(); n > 0 {
		fmt.Printf("run %d: %d produce errors, %d read errors of %d reads; first: %v\n", run, ackErrs.Load(), readErrs.Load(), reads.Load(), firstErr.Load())
	}
	return res, nil
}

// api sends a JSON request to the node's REST API and checks the status.
func api(hc *http.Client, base, method, path string, body any, want int) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(method, base+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d: %s", method, path, resp.StatusCode, out)
	}
	return nil
}

// commitMetrics reads the ingestion's commit count and total commit time
// from GET /metrics.
func commitMetrics(hc *http.Client, base string) (int64, float64) {
	resp, err := hc.Get(base + "/metrics")
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var n int64
	var sum float64
	for _, line := range strings.Split(string(b), "\n") {
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, "{")
		switch name {
		case "sluice_ingest_commit_duration_seconds_count":
			x, _ := strconv.ParseFloat(strings.TrimSpace(val), 64)
			n += int64(x)
		case "sluice_ingest_commit_duration_seconds_sum":
			x, _ := strconv.ParseFloat(strings.TrimSpace(val), 64)
			sum += x
		}
	}
	return n, sum
}

// quantile returns the q-quantile of xs (nearest rank); 0 if empty.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown\n"
	}
	return string(b)
}
