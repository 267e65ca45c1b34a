package broker_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/sluice-dev/sluice/internal/broker"
)

// Environment of the helper process that TestHardKill re-executes.
const (
	helperDirEnv  = "SLUICE_BROKER_HELPER_DIR"
	helperSyncEnv = "SLUICE_BROKER_HELPER_SYNC"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperDirEnv); dir != "" {
		os.Exit(helperBroker(dir, os.Getenv(helperSyncEnv) == "1"))
	}
	os.Exit(m.Run())
}

// helperBroker serves a broker on dir, prints its address, and runs until
// stdin closes or the parent kills it.
func helperBroker(dir string, sync bool) int {
	b, err := broker.Start(broker.Options{Addr: "127.0.0.1:0", DataDir: dir, SyncWrites: sync}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("ADDR %s\n", b.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0 // no Close: the point is to die without flushing
}

// TestHardKill runs the broker in a child process, produces records and
// commits offsets, kills the child with SIGKILL, and restarts on the same
// DataDir. Every acknowledged record and commit must survive, with and
// without SyncWrites: kfake writes each batch to its segment file with
// write(2) before acknowledging, so the data sits in the page cache, which
// outlives the process. (Only a machine crash needs SyncWrites.)
func TestHardKill(t *testing.T) {
	for name, sync := range map[string]bool{"page cache": false, "sync writes": true} {
		t.Run(name, func(t *testing.T) {
			ctx := testContext(t)
			dir := t.TempDir()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), helperDirEnv+"="+dir, helperSyncEnv+"="+map[bool]string{true: "1"}[sync])
			cmd.Stderr = t.Output()
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			defer stdin.Close()
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(stdout).ReadString('\n')
			addr, ok := strings.CutPrefix(strings.TrimSpace(line), "ADDR ")
			if err != nil || !ok {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("helper printed %q: %v", line, err)
			}

			cl := newClient(t, addr, nil)
			if err := broker.CreateTopic(ctx, cl, "events", 3); err != nil {
				t.Fatal(err)
			}
			var kvs []string
			for i := range 100 {
				kvs = append(kvs, fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i))
			}
			want := produce(ctx, t, cl, "events", kvs...)
			commit := kadm.Offsets{}
			commit.AddOffset("events", 1, 2, -1)
			if _, err := kadm.NewClient(cl).CommitOffsets(ctx, "g", commit); err != nil {
				t.Fatal(err)
			}
			wantTopics, err := broker.ListTopics(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			cl.Close()

			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
				t.Fatalf("helper exit: %v, want killed", err)
			}

			b := startBroker(t, broker.Options{DataDir: dir})
			verifyRestored(ctx, t, b.Addr(), "events", want, wantTopics)
		})
	}
}
