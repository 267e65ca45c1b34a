package node_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
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
	"github.com/sluice-dev/sluice/internal/testutil/sluicetest"
)

// The harness of the chaos tests: the sluice binary, built once per run
// of the test binary, run as a child process that the test kills with
// SIGKILL and restarts on the same data directory.

func TestMain(m *testing.M) {
	code := m.Run()
	if sluiceBuild.dir != "" {
		os.RemoveAll(sluiceBuild.dir)
	}
	os.Exit(code)
}

// sluiceBuild is the sluice binary that sluiceBinary builds the first time
// a test asks for it, shared by every later test; TestMain removes it.
var sluiceBuild struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// sluiceBinary returns the path of cmd/sluice built from this tree. The
// first call builds it (and every call fails the test if that build
// failed); later calls reuse it.
func sluiceBinary(t *testing.T) string {
	t.Helper()
	root := sluicetest.RepoRoot(t)
	sluiceBuild.once.Do(func() {
		b := &sluiceBuild
		goBin, err := exec.LookPath("go")
		if err != nil {
			out, gerr := exec.Command("go", "env", "GOROOT").Output()
			if gerr != nil {
				b.err = fmt.Errorf("finding the go command: %w", err)
				return
			}
			goBin = filepath.Join(strings.TrimSpace(string(out)), "bin", "go")
		}
		if b.dir, err = os.MkdirTemp("", "sluice-node-test-"); err != nil {
			b.err = fmt.Errorf("creating a directory for the sluice binary: %w", err)
			return
		}
		b.bin = filepath.Join(b.dir, "sluice")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, goBin, "build", "-o", b.bin, "./cmd/sluice")
		cmd.Dir = root
		began := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build ./cmd/sluice: %w\n%s", err, out)
			return
		}
		t.Logf("built sluice in %v", time.Since(began).Round(time.Millisecond))
	})
	if sluiceBuild.err != nil {
		t.Fatal(sluiceBuild.err)
	}
	return sluiceBuild.bin
}

// startChaosTest begins a chaos test: it skips the test with -short, and
// returns the random source of its kill schedule, seeded from
// SLUICE_CHAOS_SEED if it is set and from the clock otherwise, and logs the
// seed for a replay. stream tells the tests' sequences apart.
func startChaosTest(t *testing.T, stream uint64) *rand.Rand {
	t.Helper()
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
	return rand.New(rand.NewPCG(seed, seed^stream))
}

// newSluiceWithBroker starts a broker in the test process, with topic of
// three partitions, and prepares a sluice process that uses it instead of
// an embedded one; it returns the process and the broker's address. The
// broker is closed at cleanup.
func newSluiceWithBroker(t *testing.T, topic string) (*sluiceProcess, string) {
	t.Helper()
	b, err := broker.Start(broker.Options{Addr: "127.0.0.1:0"}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	admin, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := broker.CreateTopic(sluicetest.Context(t), admin, topic, 3); err != nil {
		t.Fatal(err)
	}
	return newSluiceProcess(t, "--no-broker", "--broker-addr", b.Addr()), b.Addr()
}

// freeAddr returns a local address that is free now.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// sluiceProcess is `sluice up` run as a child process, again and again, on
// one data directory: start runs it, kill ends a run with SIGKILL, and the
// next start restarts it with the same arguments. Every run's stderr is
// appended to one log file, whose tail is logged if the test fails. A
// sluiceProcess belongs to its test's goroutine.
type sluiceProcess struct {
	t       *testing.T
	bin     string
	args    []string
	data    string // the data directory
	logPath string
	run     *sluiceRun // the latest run, nil before the first start
}

// newSluiceProcess prepares `sluice up` on a fresh data directory, with
// its REST API on a free port and debug logs; brokerArgs choose the broker
// ("--no-broker", "--broker-addr", ADDR for one the test runs;
// "--broker-addr", ADDR for the embedded one on a fixed address). It does
// not start it.
func newSluiceProcess(t *testing.T, brokerArgs ...string) *sluiceProcess {
	t.Helper()
	dir := t.TempDir()
	p := &sluiceProcess{t: t, bin: sluiceBinary(t), data: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "sluice.log")}
	p.args = append(append([]string{"up"}, brokerArgs...), "--data", p.data, "--http", "127.0.0.1:0", "--log-level", "debug")
	t.Cleanup(func() {
		if t.Failed() {
			logTail(t, p.logPath, 80)
		}
	})
	return p
}

// start starts a new run; the previous one must have ended. Its stderr is
// appended to the log, and it is killed at cleanup if it is still running.
func (p *sluiceProcess) start() {
	t := p.t
	t.Helper()
	if p.run != nil {
		select {
		case <-p.run.exited:
		default:
			t.Fatal("starting sluice while its previous run is still running")
		}
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(logf, "=== %s %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(p.args, " "))
	r := &sluiceRun{up: make(chan string, 1), exited: make(chan struct{})}
	r.cmd = exec.Command(p.bin, p.args...)
	r.cmd.Stdout = &lineWriter{line: r.onLine}
	r.cmd.Stderr = logf
	r.cmd.WaitDelay = 5 * time.Second
	if err := r.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("starting %s: %v", p.bin, err)
	}
	r.started = time.Now()
	go func() {
		r.waitErr = r.cmd.Wait()
		logf.Close()
		close(r.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-r.exited:
		default:
			r.cmd.Process.Kill()
			<-r.exited
		}
	})
	p.run = r
}

// waitUp waits (bounded) for the current run to report its REST API URL,
// and returns a client of it.
func (p *sluiceProcess) waitUp() *sluicetest.Client {
	p.t.Helper()
	select {
	case url := <-p.run.up:
		return sluicetest.NewClient(url, "chaos")
	case <-p.run.exited:
		p.t.Fatalf("sluice exited before it was up: %v", p.run.waitErr)
	case <-time.After(30 * time.Second):
		p.t.Fatal("sluice not up after 30s")
	}
	return nil
}

// kill sends SIGKILL to the current run and waits for it to be gone.
func (p *sluiceProcess) kill() {
	p.t.Helper()
	if err := p.run.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatalf("SIGKILL: %v", err)
	}
	select {
	case <-p.run.exited:
	case <-time.After(10 * time.Second):
		p.t.Fatal("process still running 10s after SIGKILL")
	}
}

// term sends SIGTERM to the current run and waits (bounded) for a clean
// exit.
func (p *sluiceProcess) term(timeout time.Duration) error {
	if err := p.run.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.run.exited:
		return p.run.waitErr
	case <-time.After(timeout):
		return fmt.Errorf("still running %v after SIGTERM", timeout)
	}
}

// age is how long ago the current run started.
func (p *sluiceProcess) age() time.Duration { return time.Since(p.run.started).Round(time.Millisecond) }

// isUp reports whether the current run has reported its REST API URL.
func (p *sluiceProcess) isUp() bool {
	p.run.mu.Lock()
	defer p.run.mu.Unlock()
	return p.run.url != ""
}

// log returns the log of every run so far.
func (p *sluiceProcess) log() string {
	p.t.Helper()
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		p.t.Fatal(err)
	}
	return string(b)
}

// sluiceRun is one run of a sluice process.
type sluiceRun struct {
	cmd     *exec.Cmd
	started time.Time
	up      chan string // receives the REST API URL once it is up
	exited  chan struct{}
	waitErr error

	mu  sync.Mutex
	url string
}

const upPrefix = "sluice is up: REST API "

func (r *sluiceRun) onLine(line string) {
	rest, ok := strings.CutPrefix(line, upPrefix)
	if !ok {
		return
	}
	url, _, _ := strings.Cut(rest, ",")
	r.mu.Lock()
	r.url = url
	r.mu.Unlock()
	r.up <- url
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
