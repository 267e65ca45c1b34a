package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// loadResult is what a load child prints (one JSON line) for one rate.
type loadResult struct {
	Rate     int     `json:"rate"`
	Total    int     `json:"total"` // requests sent, warm-up included
	Sent     int     `json:"sent"`  // requests measured
	Errors   int     `json:"errors"`
	Achieved float64 `json:"achieved"` // completed requests per second of the measured window
	// Latency percentiles in microseconds, from each request's scheduled
	// send time to the last byte of its response.
	P50  float64 `json:"p50_us"`
	P99  float64 `json:"p99_us"`
	P999 float64 `json:"p999_us"`
	Max  float64 `json:"max_us"`
	// CPU is the load generator's own CPU time (user+system) in the
	// measured window, in seconds.
	CPU float64 `json:"cpu_s"`
	// FirstError describes one failure, if any.
	FirstError string `json:"first_error,omitempty"`
}

// loadOptions configures one load child run.
type loadOptions struct {
	addr     string // host:port
	path     string // request path
	floor    bool   // send the do-nothing body
	rate     int
	duration time.Duration
	warmup   time.Duration
	conns    int
	entities int
}

// runLoad is the open-loop load generator. One pacer goroutine, locked to
// its own OS thread, sleeps with nanosleep(2) (timer slack 1 µs) until each
// request is due at start + k/rate and writes it to connection k mod conns
// at once, pipelining behind earlier requests on that connection if they
// are still in flight; a reader goroutine per connection reads the
// responses in order. Latency counts from when a request was due to the
// last byte of its response, so a stalled server is charged for every
// request queued behind the stall (no coordinated omission), and the
// schedule never waits for the server. Go's own timers are not used for
// pacing: with nothing else to do, the runtime waits for a timer in
// epoll_wait with millisecond granularity, which would add up to 1 ms to
// every latency. The HTTP/1.1 client is hand-written (one write per
// request; a buffered read of the status line, the headers and
// Content-Length bytes) so that the generator costs the shared CPUs
// little; the same client measures the do-nothing server and sluice.
func runLoad(o loadOptions) (loadResult, error) {
	next := requests(o)
	interval := time.Second / time.Duration(o.rate)
	nWarm := int(o.warmup / interval)
	total := nWarm + int(o.duration/interval)
	lat := make([]time.Duration, total)
	done := make([]time.Time, total)
	errs := make([]error, total)

	type lconn struct {
		c      net.Conn
		br     *bufio.Reader
		broken atomic.Bool
	}
	conns := make([]*lconn, o.conns)
	start := time.Now().Add(20 * time.Millisecond)
	dueAt := func(k int) time.Time { return start.Add(time.Duration(k) * interval) }
	deadline := start.Add(o.warmup + o.duration + 30*time.Second)
	for i := range conns {
		c, err := net.Dial("tcp", o.addr)
		if err != nil {
			return loadResult{}, fmt.Errorf("connecting to %s: %w", o.addr, err)
		}
		defer c.Close()
		_ = c.(*net.TCPConn).SetNoDelay(true)
		_ = c.SetDeadline(deadline)
		conns[i] = &lconn{c: c, br: bufio.NewReaderSize(c, 16<<10)}
	}
	// Connection c carries requests c, c+conns, c+2*conns, ...: its reader
	// knows which request each response answers without being told.
	var wg sync.WaitGroup
	for c, lc := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			for k := c; k < total; k += len(conns) {
				if err == nil {
					if err = readResponse(lc.br); err != nil {
						lc.broken.Store(true)
					}
				}
				now := time.Now()
				lat[k], done[k] = now.Sub(dueAt(k)), now
				if errs[k] == nil {
					errs[k] = err
				}
			}
		}()
	}

	var cpuStart time.Duration
	paced := make(chan struct{})
	go func() {
		defer close(paced)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		// PR_SET_TIMERSLACK: let nanosleep wake within 1 µs of its
		// deadline rather than the default 50 µs.
		_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, 29, 1000, 0)
		rng := rand.New(rand.NewPCG(1, 42))
		for k := range total {
			if k == nWarm {
				cpuStart = cpuNow()
			}
			if d := time.Until(dueAt(k)); d > 0 {
				ts := syscall.NsecToTimespec(int64(d))
				for syscall.Nanosleep(&ts, &ts) == syscall.EINTR {
				}
			}
			lc := conns[k%len(conns)]
			if lc.broken.Load() {
				continue // its reader records the error
			}
			if _, err := lc.c.Write(next(rng)); err != nil {
				// The reader's next read fails and it records errors
				// for this request and the rest of the connection's.
				lc.broken.Store(true)
				_ = lc.c.Close()
			}
		}
	}()
	<-paced
	wg.Wait()
	cpu := cpuNow() - cpuStart

	res := loadResult{Rate: o.rate, Total: total, CPU: cpu.Seconds()}
	m := lat[nWarm:]
	var last time.Time
	for k := nWarm; k < total; k++ {
		res.Sent++
		if errs[k] != nil {
			if res.Errors == 0 {
				res.FirstError = errs[k].Error()
			}
			res.Errors++
		}
		if done[k].After(last) {
			last = done[k]
		}
	}
	res.Achieved = float64(res.Sent-res.Errors) / last.Sub(dueAt(nWarm)).Seconds()
	slices.Sort(m)
	pct := func(q float64) float64 { return us(m[int(float64(len(m)-1)*q)]) }
	res.P50, res.P99, res.P999, res.Max = pct(0.50), pct(0.99), pct(0.999), us(m[len(m)-1])
	return res, nil
}

// requests writes whole HTTP requests: for sluice, one random entity of
// o.entities × 10 features; for the floor, an empty JSON object. The
// returned function reuses its buffer.
func requests(o loadOptions) func(rng *rand.Rand) []byte {
	var buf, body []byte
	return func(rng *rand.Rand) []byte {
		body = body[:0]
		if o.floor {
			body = append(body, "{}"...)
		} else {
			body = appendRequestBody(body, rng.IntN(o.entities))
		}
		buf = fmt.Appendf(buf[:0], "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", o.path, o.addr, len(body))
		return append(buf, body...)
	}
}

func appendRequestBody(dst []byte, entity int) []byte {
	return fmt.Appendf(dst, `{"features":[%s],"entities":{"entity_id":["e%d"]}}`, featureList, entity)
}

// readResponse reads one HTTP/1.1 response with a Content-Length body and
// fails unless its status is 200.
func readResponse(br *bufio.Reader) error {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return fmt.Errorf("reading status line: %w", err)
	}
	ok := bytes.HasPrefix(line, []byte("HTTP/1.1 200 "))
	status := string(bytes.TrimSpace(line))
	n := -1
	for {
		h, err := br.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("reading headers: %w", err)
		}
		if len(h) <= 2 {
			break
		}
		if name, val, found := bytes.Cut(h, []byte(":")); found && bytes.EqualFold(name, []byte("Content-Length")) {
			n, err = strconv.Atoi(string(bytes.TrimSpace(val)))
			if err != nil {
				return fmt.Errorf("bad Content-Length %q", val)
			}
		}
	}
	if n < 0 {
		return errors.New("response without Content-Length")
	}
	if _, err := br.Discard(n); err != nil {
		return fmt.Errorf("reading body: %w", err)
	}
	if !ok {
		return fmt.Errorf("status %s", status)
	}
	return nil
}

// loadChild runs one load and prints its result as a JSON line.
func loadChild(o loadOptions) {
	if p := os.Getenv("SERVING_BENCH_LOAD_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	res, err := runLoad(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(res)
}
