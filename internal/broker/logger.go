package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
)

// kfakeLogger adapts slog to kfake.Logger. kfake's messages are printf
// format strings, so the formatted text becomes the slog message.
type kfakeLogger struct {
	l *slog.Logger

	mu        sync.Mutex
	capturing bool
	errs      []error
}

var _ kfake.Logger = (*kfakeLogger)(nil)

func slogLevel(l kfake.LogLevel) slog.Level {
	switch l {
	case kfake.LogLevelError:
		return slog.LevelError
	case kfake.LogLevelWarn:
		return slog.LevelWarn
	case kfake.LogLevelInfo:
		return slog.LevelDebug
	default:
		return slog.LevelDebug - 4
	}
}

func (k *kfakeLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	if level == kfake.LogLevelNone {
		return
	}
	if level == kfake.LogLevelError {
		k.mu.Lock()
		if k.capturing {
			k.errs = append(k.errs, fmt.Errorf("broker: "+format, args...))
		}
		k.mu.Unlock()
	}
	lvl := slogLevel(level)
	ctx := context.Background()
	if !k.l.Enabled(ctx, lvl) {
		return // kfake logs every request at Debug; skip the Sprintf
	}
	k.l.Log(ctx, lvl, fmt.Sprintf(format, args...), "component", "broker")
}

// capture starts (on) or stops (off) collecting Error-level logs and, when
// stopping, returns what was collected. Close uses it to turn kfake's logged
// persistence failures into an error.
func (k *kfakeLogger) capture(on bool) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.capturing = on
	if on {
		k.errs = nil
		return nil
	}
	err := errors.Join(k.errs...)
	k.errs = nil
	return err
}
