// Command serving benchmarks online feature serving: POST /get-online-features
// for one entity × 10 features, against a real sluice node (REST API, online
// store, feature table synced from Iceberg), at fixed request rates from an
// open-loop load generator in this process.
//
// Latency is measured from each request's scheduled send time (so a stalled
// server is charged for the requests queued behind it: no coordinated
// omission) to the end of its response. Each rate runs for -duration; the
// same rates are run against a do-nothing HTTP server in the same process
// (the floor this machine imposes) for comparison. The embedded store always
// runs; Redis runs when redis-server is installed (or -redis URL is given).
//
//	go run ./bench/serving                         # rates 1000,2500,5000,7500,10000 QPS, 5 s each
//	go run ./bench/serving -rates 5000 -duration 20s
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
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/node"
	"github.com/sluice-dev/sluice/internal/table"
)

// Targets from issue 4.
const (
	targetRate        = 5000
	targetP99Embedded = time.Millisecond
	targetP99Redis    = 2 * time.Millisecond
)

func main() {
	rates := flag.String("rates", "1000,2500,5000,7500,10000", "request rates to run, per second")
	duration := flag.Duration("duration", 5*time.Second, "how long each rate runs")
	entities := flag.Int("entities", 100_000, "entities in the feature table")
	redisURL := flag.String("redis", "", "redis://host:port of a Redis to test (default: start redis-server if installed)")
	noRedis := flag.Bool("no-redis", false, "skip Redis")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run (server and load generator share the process)")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	var rs []int
	for _, s := range strings.Split(*rates, ",") {
		r, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || r <= 0 {
			log.Fatalf("-rates: %q is not a positive integer", s)
		}
		rs = append(rs, r)
	}

	floor := startFloor()
	defer floor.Close()

	stores := []struct{ name, online string }{{"embedded", ""}}
	if *noRedis {
	} else if *redisURL != "" {
		stores = append(stores, struct{ name, online string }{"redis", *redisURL})
	} else if url, stop := startRedis(); url != "" {
		defer stop()
		stores = append(stores, struct{ name, online string }{"redis", url})
	} else {
		fmt.Println("redis-server is not installed: skipping Redis (apt-get install redis-server)")
	}

	for _, st := range stores {
		url, stop := startNode(st.online, *entities)
		body := func(rng *rand.Rand) []byte {
			return fmt.Appendf(nil, `{"features":[%s],"entities":{"entity_id":["e%d"]}}`, featureList, rng.IntN(*entities))
		}
		// Check one answer before measuring.
		if err := check(url, body(rand.New(rand.NewPCG(1, 1)))); err != nil {
			log.Fatalf("%s: %v", st.name, err)
		}
		maxOK := 0
		for _, rate := range rs {
			fl := run(floor.URL+"/", rate, *duration, func(*rand.Rand) []byte { return []byte(`{}`) })
			res := run(url+"/get-online-features", rate, *duration, body)
			fmt.Printf("%s %6d QPS: achieved %7.0f, p50 %v p99 %v p999 %v max %v errors %d | floor p50 %v p99 %v p999 %v\n",
				st.name, rate, res.achieved, res.p(50), res.p(99), res.p(99.9), res.max, res.errors, fl.p(50), fl.p(99), fl.p(99.9))
			if res.errors == 0 && res.achieved >= 0.95*float64(rate) && res.p(99) <= 10*time.Millisecond {
				maxOK = rate
			}
			if rate == targetRate {
				fmt.Printf("BENCH serving_%s_p50_us_at_5000qps %.0f us\n", st.name, us(res.p(50)))
				fmt.Printf("BENCH serving_%s_p99_us_at_5000qps %.0f us\n", st.name, us(res.p(99)))
				fmt.Printf("BENCH serving_%s_p999_us_at_5000qps %.0f us\n", st.name, us(res.p(99.9)))
				fmt.Printf("BENCH serving_floor_p99_us_at_5000qps %.0f us\n", us(fl.p(99)))
				target := targetP99Embedded
				if st.name == "redis" {
					target = targetP99Redis
				}
				verdict := "PASS"
				if res.p(99) > target || res.errors > 0 {
					verdict = "MISS"
				}
				fmt.Printf("target %s p99 <= %v at %d QPS: %s (p99 %v; the do-nothing server's p99 %v)\n", st.name, target, targetRate, verdict, res.p(99), fl.p(99))
			}
		}
		fmt.Printf("BENCH serving_%s_max_qps %d qps\n", st.name, maxOK)
		stop()
	}
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

const nFeatures = 10

var featureList = func() string {
	var b strings.Builder
	for i := range nFeatures {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"main.bench.user_features:f%d"`, i)
	}
	return b.String()
}()

// startNode starts a node with the given online store and a feature table
// of n entities × 10 float features, synced online. It returns the API URL.
func startNode(online string, n int) (string, func()) {
	dir, err := os.MkdirTemp("", "sluice-bench-serving-")
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	nd, err := node.Start(ctx, node.Options{DataDir: dir, BrokerAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Online: online},
		slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		log.Fatal(err)
	}
	name, _ := ident.Parse("main.bench.user_features")
	fields := []arrow.Field{
		{Name: "entity_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
	}
	for i := range nFeatures {
		fields = append(fields, arrow.Field{Name: fmt.Sprintf("f%d", i), Type: arrow.PrimitiveTypes.Float64, Nullable: true})
	}
	sc := arrow.NewSchema(fields, nil)
	t, err := nd.Tables.Create(ctx, name, sc, table.CreateOptions{Properties: map[string]string{
		"sluice.primary_key": "entity_id,ts", "sluice.timeseries_key": "ts",
	}})
	if err != nil {
		log.Fatal(err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	now := time.Now()
	for e := range n {
		b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("e%d", e))
		b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(now.UnixMicro()))
		for i := range nFeatures {
			b.Field(2 + i).(*array.Float64Builder).Append(float64(e) + float64(i)/10)
		}
	}
	rec := b.NewRecordBatch()
	if err := t.Append(ctx, []arrow.RecordBatch{rec}, nil); err != nil {
		log.Fatal(err)
	}
	rec.Release()
	if _, err := nd.Publisher.Sync(ctx, name); err != nil {
		log.Fatal(err)
	}
	return nd.URL(), func() { nd.Close(); os.RemoveAll(dir) }
}

func check(url string, body []byte) error {
	resp, err := http.Post(url+"/get-online-features", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var out struct {
		Results []struct {
			Statuses []string `json:"statuses"`
		} `json:"results"`
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return err
	}
	if len(out.Results) != 1+nFeatures || out.Results[nFeatures].Statuses[0] != "PRESENT" {
		return fmt.Errorf("unexpected answer: %s", b)
	}
	return nil
}

type result struct {
	lat      []time.Duration // sorted
	errors   int64
	achieved float64
	max      time.Duration
}

func (r result) p(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(float64(len(r.lat)-1) * q / 100)
	return r.lat[i]
}

// run sends requests at rate per second for d, open loop: request k is due
// at start + k/rate, whoever is free sends it, and its latency counts from
// when it was due.
func run(url string, rate int, d time.Duration, body func(*rand.Rand) []byte) result {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512, MaxConnsPerHost: 512, DisableCompression: true}}
	defer client.CloseIdleConnections()
	total := int(float64(rate) * d.Seconds())
	interval := time.Second / time.Duration(rate)
	lat := make([]time.Duration, total)
	var errs atomic.Int64
	var next atomic.Int64
	start := time.Now().Add(20 * time.Millisecond)
	workers := max(64, rate/50)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for {
				k := int(next.Add(1) - 1)
				if k >= total {
					return
				}
				due := start.Add(time.Duration(k) * interval)
				if wait := time.Until(due); wait > 0 {
					time.Sleep(wait)
				}
				resp, err := client.Post(url, "application/json", bytes.NewReader(body(rng)))
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					errs.Add(1)
				}
				lat[k] = time.Since(due)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	return result{lat: lat, errors: errs.Load(), achieved: float64(total) / elapsed.Seconds(), max: lat[len(lat)-1]}
}

// floor is a do-nothing HTTP server: what the machine and net/http cost.
type floorServer struct {
	URL string
	srv *http.Server
}

func startFloor() *floorServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	})}
	go func() { _ = srv.Serve(ln) }()
	return &floorServer{URL: "http://" + ln.Addr().String(), srv: srv}
}

func (f *floorServer) Close() { _ = f.srv.Close() }

// startRedis starts redis-server on a free port if it is installed.
func startRedis() (string, func()) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir, _ := os.MkdirTemp("", "sluice-bench-redis-")
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			log.Fatalf("redis-server did not start on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "redis://" + addr, func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); os.RemoveAll(filepath.Clean(dir)) }
}
