package broker_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/broker"
	"github.com/sluice-dev/sluice/internal/testutil/certs"
)

// These tests check that a librdkafka client (kcat, Debian package "kcat")
// talks to the embedded broker. They skip when kcat is absent, except
// under CI=true, where they fail.

func kcatPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("kcat not on PATH (apt-get install kcat)")
		}
		t.Skip("kcat not on PATH")
	}
	return p
}

// runKcat runs kcat against addr with args and returns its stdout.
func runKcat(ctx context.Context, t *testing.T, addr, stdin string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, kcatPath(t), append([]string{"-b", addr}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat %s: %v\nstderr:\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// kcatRoundTrip produces with kcat and consumes with franz-go on one topic,
// then the other way round on another.
func kcatRoundTrip(t *testing.T, addr string, clientTLS *tls.Config, kcatArgs ...string) {
	ctx := testContext(t)

	// kcat -P: one record per line, key and value split at the first ':'.
	runKcat(ctx, t, addr, "k1:v1\nk2:v2\nk3:v3\n", append(kcatArgs, "-t", "from-kcat", "-P", "-K:")...)
	got := consume(ctx, t, addr, clientTLS, "from-kcat", 3)
	equalRecs(t, got, []rec{{0, 0, "k1", "v1"}, {0, 1, "k2", "v2"}, {0, 2, "k3", "v3"}})

	// kcat -C -e: read from the beginning and exit at the end.
	cl := newClient(t, addr, clientTLS)
	produce(ctx, t, cl, "from-franz", "a", "1", "b", "2", "c", "3")
	out := runKcat(ctx, t, addr, "", append(kcatArgs, "-t", "from-franz", "-C", "-e", "-q", "-f", `%k=%s@%p:%o\n`)...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if want := []string{"a=1@0:0", "b=2@0:1", "c=3@0:2"}; !slices.Equal(lines, want) {
		t.Fatalf("kcat consumed %q, want %q", lines, want)
	}
}

func TestKcatPlain(t *testing.T) {
	kcatPath(t)
	b := startBroker(t, broker.Options{})
	kcatRoundTrip(t, b.Addr(), nil)

	// kcat -L lists the auto-created topics.
	out := runKcat(testContext(t), t, b.Addr(), "", "-L")
	for _, want := range []string{`topic "from-kcat" with 1 partitions`, `topic "from-franz" with 1 partitions`} {
		if !strings.Contains(out, want) {
			t.Errorf("kcat -L lacks %q:\n%s", want, out)
		}
	}
}

func TestKcatMTLS(t *testing.T) {
	kcatPath(t)
	pki := certs.New(t, "")
	tests := map[string][]string{
		"key":                  {"-X", "ssl.key.location=" + pki.ClientKeyFile},
		"legacy encrypted key": {"-X", "ssl.key.location=" + pki.ClientKeyEncFile, "-X", "ssl.key.password=" + pki.Password},
		"pkcs8 encrypted key":  {"-X", "ssl.key.location=" + pki.ClientKeyPKCS8File, "-X", "ssl.key.password=" + pki.Password},
	}
	for name, keyArgs := range tests {
		t.Run(name, func(t *testing.T) {
			b := startBroker(t, broker.Options{TLS: pki.ServerTLS()})
			args := append([]string{
				"-X", "security.protocol=ssl",
				"-X", "ssl.ca.location=" + pki.CAFile,
				"-X", "ssl.certificate.location=" + pki.ClientCertFile,
			}, keyArgs...)
			kcatRoundTrip(t, b.Addr(), pki.ClientTLS(), args...)
		})
	}

	t.Run("no client certificate", func(t *testing.T) {
		b := startBroker(t, broker.Options{TLS: pki.ServerTLS()})
		ctx := testContext(t)
		cmd := exec.CommandContext(ctx, kcatPath(t), "-b", b.Addr(), "-L", "-m", "1",
			"-X", "security.protocol=ssl", "-X", "ssl.ca.location="+pki.CAFile)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "certificate required") {
			t.Fatalf("kcat without a client certificate: err=%v, want a TLS alert\n%s", err, out)
		}
	})
}
