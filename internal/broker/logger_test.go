package broker

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

func TestKfakeLoggerLevels(t *testing.T) {
	tests := map[string]struct {
		handlerLevel slog.Level
		want         []string
	}{
		"default info handler": {slog.LevelInfo, []string{"level=ERROR msg=\"e 1\"", "level=WARN msg=\"w 2\""}},
		"debug handler":        {slog.LevelDebug, []string{"level=ERROR", "level=WARN", "level=DEBUG msg=\"i 3\""}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			k := &kfakeLogger{l: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tc.handlerLevel}))}
			k.Logf(kfake.LogLevelError, "e %d", 1)
			k.Logf(kfake.LogLevelWarn, "w %d", 2)
			k.Logf(kfake.LogLevelInfo, "i %d", 3)
			k.Logf(kfake.LogLevelDebug, "d %d", 4)
			out := buf.String()
			if n := strings.Count(out, "\n"); n != len(tc.want) {
				t.Fatalf("got %d lines, want %d:\n%s", n, len(tc.want), out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "d 4") {
				t.Errorf("kfake debug output leaked:\n%s", out)
			}
		})
	}
}

func TestKfakeLoggerCapture(t *testing.T) {
	k := &kfakeLogger{l: slog.New(slog.DiscardHandler)}
	k.Logf(kfake.LogLevelError, "before %s", "capture")
	k.capture(true)
	k.Logf(kfake.LogLevelWarn, "just a warning")
	k.Logf(kfake.LogLevelError, "persist to disk: %v", errors.New("disk full"))
	err := k.capture(false)
	if err == nil || err.Error() != "broker: persist to disk: disk full" {
		t.Fatalf("captured %v", err)
	}
	if err := k.capture(false); err != nil {
		t.Fatalf("second stop returned %v", err)
	}
}
