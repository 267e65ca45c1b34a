// Command serving benchmarks online feature serving: POST /get-online-features
// for one entity × 10 features, against a real sluice node (REST API over
// HTTP on a loopback port, online store, a feature table synced from
// Iceberg), at fixed request rates from an open-loop load generator.
//
// Three processes take part, all this binary: the parent, which only
// orchestrates; server children (a do-nothing HTTP server, the floor this
// machine imposes, and one sluice node per online store), each started
// once and kept for the whole benchmark; and, per measurement, a load
// child that drives one server at one rate (see runLoad). Latency counts
// from each request's scheduled send time to the end of its response, so a
// stalled server is charged for the requests queued behind it (no
// coordinated omission). For each run, rates go up in steps and each
// target (floor, embedded, Redis) runs at each rate in turn, so that the
// floor is measured beside sluice under the same conditions; the results
// are medians over -runs runs. Redis runs when redis-server is installed
// (or -redis URL is given).
//
//	go run ./bench/serving                          # 3 runs of 1000..20000 QPS, 10 s each
//	go run ./bench/serving -rates 5000 -runs 5
//	go run ./bench/serving -rates 5000 -runs 1 -profile /tmp/prof   # CPU and allocation profiles of the servers
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Targets from issue 4.
const (
	targetRate        = 5000
	targetP99Embedded = time.Millisecond
	targetP99Redis    = 2 * time.Millisecond
)

const (
	nFeatures = 10
	tableName = "main.bench.user_features"
)

var featureList = func() string {
	var b strings.Builder
	for i := range nFeatures {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"%s:f%d"`, tableName, i)
	}
	return b.String()
}()

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

type config struct {
	rates       []int
	duration    time.Duration
	warmup      time.Duration
	runs        int
	conns       int
	entities    int
	stores      []string
	redisURL    string
	serverProcs int
	loadProcs   int
	slo         time.Duration
	profile     string
}

func main() {
	var c config
	rates := flag.String("rates", "1000,2500,5000,7500,10000,15000,20000", "request rates to run, per second, ascending")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "how long each measurement runs (after the warm-up)")
	flag.DurationVar(&c.warmup, "warmup", time.Second, "warm-up at the same rate before each measurement, not counted")
	flag.IntVar(&c.runs, "runs", 3, "runs; results are medians")
	flag.IntVar(&c.conns, "conns", 64, "keep-alive connections of the load generator")
	flag.IntVar(&c.entities, "entities", 100_000, "entities in the feature table")
	stores := flag.String("stores", "embedded,redis", "online stores to test (the do-nothing floor always runs)")
	flag.StringVar(&c.redisURL, "redis", "", "redis://host:port of a Redis to test (default: start redis-server if installed)")
	flag.IntVar(&c.serverProcs, "server-procs", 2, "GOMAXPROCS of the server processes")
	flag.IntVar(&c.loadProcs, "load-procs", 2, "GOMAXPROCS of the load generator process")
	flag.DurationVar(&c.slo, "slo", 10*time.Millisecond, "a rate is sustained when achieved ≥ 98% of it, no errors, and p99 ≤ this")
	flag.StringVar(&c.profile, "profile", "", "directory for CPU and allocation profiles of each server during run 1 at 5000 QPS")

	child := flag.String("child", "", "internal: run as a server or load child")
	store := flag.String("store", "", "internal: the server child's store (floor, embedded, redis)")
	online := flag.String("online", "", "internal: the server child's online store URL")
	addr := flag.String("addr", "", "internal: the load child's target host:port")
	path := flag.String("path", "", "internal: the load child's request path")
	rate := flag.Int("rate", 0, "internal: the load child's rate")
	flag.Parse()

	switch *child {
	case "server":
		if err := serverChild(*store, *online, c.entities); err != nil {
			fmt.Fprintln(os.Stderr, "server:", err)
			os.Exit(1)
		}
		return
	case "load":
		loadChild(loadOptions{addr: *addr, path: *path, floor: *path == "/", rate: *rate, duration: c.duration,
			warmup: c.warmup, conns: c.conns, entities: c.entities})
		return
	}

	for _, s := range strings.Split(*rates, ",") {
		r, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || r <= 0 {
			log.Fatalf("-rates: %q is not a positive integer", s)
		}
		c.rates = append(c.rates, r)
	}
	for _, s := range strings.Split(*stores, ",") {
		if s = strings.TrimSpace(s); s != "" {
			c.stores = append(c.stores, s)
		}
	}
	if err := parent(c); err != nil {
		log.Fatal(err)
	}
}

// target is one server child.
type target struct {
	name string
	url  string
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
}

func (t *target) command(line string) (string, error) {
	if _, err := fmt.Fprintln(t.in, line); err != nil {
		return "", err
	}
	resp, err := t.out.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("%s server: %q: %w", t.name, line, err)
	}
	return strings.TrimSpace(resp), nil
}

type stats struct {
	cpu            time.Duration
	mallocs, bytes uint64
}

func (t *target) stats() (stats, error) {
	resp, err := t.command("stats")
	if err != nil {
		return stats{}, err
	}
	var s stats
	var gcs uint64
	var cpu int64
	if _, err := fmt.Sscanf(resp, "STATS %d %d %d %d", &cpu, &s.mallocs, &s.bytes, &gcs); err != nil {
		return stats{}, fmt.Errorf("%s server: stats %q: %w", t.name, resp, err)
	}
	s.cpu = time.Duration(cpu)
	return s, nil
}

func (t *target) stop() {
	_ = t.in.Close()
	_ = t.cmd.Wait()
}

func startTarget(c config, name, online string) (*target, error) {
	cmd := exec.Command(os.Args[0], "-child", "server", "-store", name, "-online", online, "-entities", strconv.Itoa(c.entities))
	cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(c.serverProcs))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	t := &target{name: name, cmd: cmd, in: in, out: bufio.NewReader(out)}
	line, err := t.out.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "READY ") {
		t.stop()
		return nil, fmt.Errorf("%s server did not start: %q %v", name, line, err)
	}
	t.url = strings.TrimSpace(strings.TrimPrefix(line, "READY "))
	return t, nil
}

// measurement is one load child's result with the server's costs.
type measurement struct {
	loadResult
	cpuPerReq    time.Duration // server CPU per request
	allocsPerReq float64
	bytesPerReq  float64
}

func (c config) sustained(m measurement) bool {
	return m.Errors == 0 && m.Achieved >= 0.98*float64(m.Rate) && m.P99 <= us(c.slo)
}

func measure(c config, t *target, rate int) (measurement, error) {
	u, err := url.Parse(t.url)
	if err != nil {
		return measurement{}, err
	}
	path := "/get-online-features"
	if t.name == "floor" {
		path = "/"
	}
	before, err := t.stats()
	if err != nil {
		return measurement{}, err
	}
	cmd := exec.Command(os.Args[0], "-child", "load", "-addr", u.Host, "-path", path, "-rate", strconv.Itoa(rate),
		"-duration", c.duration.String(), "-warmup", c.warmup.String(), "-conns", strconv.Itoa(c.conns), "-entities", strconv.Itoa(c.entities))
	cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(c.loadProcs))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return measurement{}, fmt.Errorf("load child against %s at %d QPS: %w", t.name, rate, err)
	}
	after, err := t.stats()
	if err != nil {
		return measurement{}, err
	}
	var m measurement
	if err := json.Unmarshal(out, &m.loadResult); err != nil {
		return measurement{}, fmt.Errorf("load child: %q: %w", out, err)
	}
	n := float64(m.Total)
	m.cpuPerReq = time.Duration(float64(after.cpu-before.cpu) / n)
	m.allocsPerReq = float64(after.mallocs-before.mallocs) / n
	m.bytesPerReq = float64(after.bytes-before.bytes) / n
	return m, nil
}

func parent(c config) error {
	fmt.Printf("load average before: %s", loadavg())
	fmt.Printf("servers: GOMAXPROCS=%d; load generator: GOMAXPROCS=%d, %d connections, open loop; %v per measurement after %v warm-up; %d runs\n",
		c.serverProcs, c.loadProcs, c.conns, c.duration, c.warmup, c.runs)
	names := []string{"floor"}
	onlines := map[string]string{}
	for _, s := range c.stores {
		switch s {
		case "embedded":
		case "redis":
			switch {
			case c.redisURL != "":
				onlines[s] = c.redisURL
			default:
				u, stop, err := startRedis()
				if err != nil {
					return err
				}
				if u == "" {
					fmt.Println("redis-server is not installed: skipping Redis (apt-get install redis-server)")
					continue
				}
				defer stop()
				onlines[s] = u
			}
		default:
			return fmt.Errorf("-stores: unknown store %q", s)
		}
		names = append(names, s)
	}
	var targets []*target
	defer func() {
		for _, t := range targets {
			t.stop()
		}
	}()
	for _, n := range names {
		t, err := startTarget(c, n, onlines[n])
		if err != nil {
			return err
		}
		targets = append(targets, t)
		if n != "floor" {
			if err := check(t.url); err != nil {
				return fmt.Errorf("%s: %w", n, err)
			}
		}
	}

	// results[target][rate] holds one measurement per run.
	results := map[string]map[int][]measurement{}
	maxQPS := map[string][]int{}
	for _, t := range targets {
		results[t.name] = map[int][]measurement{}
	}
	for run := 1; run <= c.runs; run++ {
		failed := map[string]bool{}
		best := map[string]int{}
		for _, rate := range c.rates {
			for _, t := range targets {
				if failed[t.name] && rate > targetRate {
					continue
				}
				prof := c.profile != "" && run == 1 && rate == targetRate
				if prof {
					if err := profileStart(c, t); err != nil {
						return err
					}
				}
				m, err := measure(c, t, rate)
				if err != nil {
					return err
				}
				if prof {
					if err := profileStop(c, t); err != nil {
						return err
					}
				}
				ok := c.sustained(m)
				if ok {
					best[t.name] = max(best[t.name], rate)
				} else {
					failed[t.name] = true
				}
				results[t.name][rate] = append(results[t.name][rate], m)
				fmt.Printf("run %d %-8s %6d QPS: achieved %7.0f, p50 %6.0f p99 %7.0f p999 %7.0f max %7.0f us, errors %d; server %3.0f us CPU, %4.0f allocs, %6.0f B per request; generator %2.0f us CPU/request; sustained %v; load %s",
					run, t.name, rate, m.Achieved, m.P50, m.P99, m.P999, m.Max, m.Errors,
					us(m.cpuPerReq), m.allocsPerReq, m.bytesPerReq, m.CPU*1e6/float64(m.Sent), ok, loadavg())
				if m.FirstError != "" {
					fmt.Printf("  first error: %s\n", m.FirstError)
				}
			}
		}
		for _, t := range targets {
			maxQPS[t.name] = append(maxQPS[t.name], best[t.name])
		}
	}

	fmt.Printf("\nmedians of %d runs:\n", c.runs)
	for _, t := range targets {
		for _, rate := range c.rates {
			ms := results[t.name][rate]
			if len(ms) == 0 {
				continue
			}
			fmt.Printf("%-8s %6d QPS: p50 %6.0f p99 %7.0f p999 %7.0f us, achieved %7.0f, server %3.0f us CPU, %4.0f allocs, %6.0f B per request (%d runs)\n",
				t.name, rate,
				median(ms, func(m measurement) float64 { return m.P50 }),
				median(ms, func(m measurement) float64 { return m.P99 }),
				median(ms, func(m measurement) float64 { return m.P999 }),
				median(ms, func(m measurement) float64 { return m.Achieved }),
				median(ms, func(m measurement) float64 { return us(m.cpuPerReq) }),
				median(ms, func(m measurement) float64 { return m.allocsPerReq }),
				median(ms, func(m measurement) float64 { return m.bytesPerReq }), len(ms))
		}
	}
	fmt.Println()
	for _, t := range targets {
		ms := results[t.name][targetRate]
		if len(ms) > 0 {
			p99 := median(ms, func(m measurement) float64 { return m.P99 })
			fmt.Printf("BENCH serving_%s_p50_us %.0f us\n", t.name, median(ms, func(m measurement) float64 { return m.P50 }))
			fmt.Printf("BENCH serving_%s_p99_us %.0f us\n", t.name, p99)
			fmt.Printf("BENCH serving_%s_p999_us %.0f us\n", t.name, median(ms, func(m measurement) float64 { return m.P999 }))
			fmt.Printf("BENCH serving_%s_cpu_us_per_req %.1f us\n", t.name, median(ms, func(m measurement) float64 { return us(m.cpuPerReq) }))
			if t.name != "floor" {
				fmt.Printf("BENCH serving_%s_allocs_per_req %.0f allocs\n", t.name, median(ms, func(m measurement) float64 { return m.allocsPerReq }))
				fmt.Printf("BENCH serving_%s_bytes_per_req %.0f B\n", t.name, median(ms, func(m measurement) float64 { return m.bytesPerReq }))
			}
		}
		fmt.Printf("BENCH serving_%s_max_qps %.0f qps\n", t.name, medianInt(maxQPS[t.name]))
	}
	fmt.Println()
	for _, t := range targets {
		ms := results[t.name][targetRate]
		if t.name == "floor" || len(ms) == 0 {
			continue
		}
		target := targetP99Embedded
		if t.name == "redis" {
			target = targetP99Redis
		}
		p99 := median(ms, func(m measurement) float64 { return m.P99 })
		verdict := "MET"
		if p99 > us(target) {
			verdict = "MISSED"
		}
		fmt.Printf("target %s p99 ≤ %v at %d QPS: %s (median p99 %.0f us; the do-nothing server's %.0f us)\n", t.name, target, targetRate, verdict,
			p99, median(results["floor"][targetRate], func(m measurement) float64 { return m.P99 }))
	}
	fmt.Printf("max sustained QPS: the highest rate tried with achieved ≥ 98%%, no errors and p99 ≤ %v (median over runs)\n", c.slo)
	fmt.Printf("load average after: %s", loadavg())
	return nil
}

func profileStart(c config, t *target) error {
	if err := os.MkdirAll(c.profile, 0o755); err != nil {
		return err
	}
	if _, err := t.command("allocs " + filepath.Join(c.profile, t.name+"-allocs-before.pprof")); err != nil {
		return err
	}
	_, err := t.command("cpuprofile " + filepath.Join(c.profile, t.name+"-cpu.pprof"))
	return err
}

func profileStop(c config, t *target) error {
	if _, err := t.command("stopcpu"); err != nil {
		return err
	}
	_, err := t.command("allocs " + filepath.Join(c.profile, t.name+"-allocs-after.pprof"))
	return err
}

func median(ms []measurement, f func(measurement) float64) float64 {
	xs := make([]float64, len(ms))
	for i, m := range ms {
		xs[i] = f(m)
	}
	slices.Sort(xs)
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}

func medianInt(xs []int) float64 {
	ms := make([]measurement, len(xs))
	for i, x := range xs {
		ms[i].Rate = x
	}
	return median(ms, func(m measurement) float64 { return float64(m.Rate) })
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown\n"
	}
	return string(b)
}

// check sends one request with net/http and encoding/json and checks the
// answer's shape before anything is measured.
func check(base string) error {
	resp, err := http.Post(base+"/get-online-features", "application/json", bytes.NewReader(appendRequestBody(nil, 1)))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var out struct {
		Metadata struct {
			FeatureNames []string `json:"feature_names"`
		} `json:"metadata"`
		Results []struct {
			Values   []any    `json:"values"`
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
	if len(out.Results) != 1+nFeatures || out.Results[nFeatures].Statuses[0] != "PRESENT" || out.Results[nFeatures].Values[0] != 1.9 {
		return fmt.Errorf("unexpected answer: %s", b)
	}
	return nil
}

// startRedis starts redis-server on a free port if it is installed; it
// returns "" if it is not.
func startRedis() (string, func(), error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", nil, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir, err := os.MkdirTemp("", "sluice-bench-redis-")
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); os.RemoveAll(dir) }
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("redis-server did not start on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "redis://" + addr, stop, nil
}
