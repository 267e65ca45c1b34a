package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

// DefaultAddr is where `sluice up` serves Kafka unless told otherwise.
const DefaultAddr = "127.0.0.1:9092"

// ErrAddrInUse is returned by [Start] when the listen address is taken,
// usually by another broker or a real Kafka.
var ErrAddrInUse = errors.New("broker: address already in use")

// ErrDataDirLocked is returned by [Start] when another broker (in this or
// another process) is serving the same [Options.DataDir].
var ErrDataDirLocked = errors.New("broker: data directory in use by another broker")

// Options configure [Start]. The zero value serves an in-memory broker on
// [DefaultAddr].
type Options struct {
	// Addr is the TCP address to listen on, default [DefaultAddr].
	// The host must be a loopback address (127.0.0.0/8, ::1, or
	// "localhost", which means 127.0.0.1): the embedded broker has no
	// authentication and is never exposed to the network. Port 0 picks
	// a free port; [Broker.Addr] reports it.
	Addr string

	// DataDir is where topics, records, committed offsets and producer
	// state persist across restarts; default "" keeps everything in
	// memory. It is created if missing and locked while the broker runs.
	DataDir string

	// SyncWrites fsyncs every produced batch (and every group and
	// producer-ID log entry) before acknowledging it, default false.
	// Without it, acknowledged records survive a crash of the process
	// (they are already in the OS page cache) but not a crash of the
	// machine. See the package documentation for the measured cost.
	// Ignored without DataDir.
	SyncWrites bool

	// Partitions is the partition count of topics created automatically
	// on first use (and by CreateTopics requests asking for the default),
	// default 1.
	Partitions int32

	// TLS, if set, makes the broker serve TLS only. Set ClientAuth to
	// tls.RequireAndVerifyClientCert (with ClientCAs) for mutual TLS.
	// The server certificate must cover the listen host (127.0.0.1),
	// which is what the broker advertises to clients. Default nil: plain
	// TCP.
	TLS *tls.Config
}

// EnsureDefaults fills in the defaults of unset fields.
func (o *Options) EnsureDefaults() {
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if o.Partitions == 0 {
		o.Partitions = 1
	}
}

// Validate reports the first invalid field. It expects defaults applied.
func (o *Options) Validate() error {
	if _, err := loopback(o.Addr); err != nil {
		return err
	}
	if o.Partitions < 1 {
		return fmt.Errorf("broker: partitions must be at least 1, got %d", o.Partitions)
	}
	return nil
}

// loopback resolves addr to a host:port whose host is a loopback IP.
func loopback(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("broker: address %q: %w", addr, err)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("broker: address %q: host must be a loopback address such as 127.0.0.1; the embedded broker is for local use only", addr)
	}
	return net.JoinHostPort(host, port), nil
}

// Broker is a running single-node Kafka-protocol broker (kfake) serving
// one listener. Its methods are safe for concurrent use.
type Broker struct {
	cluster *kfake.Cluster
	addr    string
	log     *kfakeLogger
	lock    io.Closer // nil without DataDir

	closeOnce sync.Once
	closeErr  error
}

// Start listens on opts.Addr and serves the Kafka protocol until Close.
// Topics are created automatically when a client asks for them in a
// metadata request with auto-creation allowed, as Kafka does with
// auto.create.topics.enable=true: producers of librdkafka (kcat) and the
// Java client ask by default, franz-go clients only with
// kgo.AllowAutoTopicCreation(). With opts.DataDir set, Start first
// reloads the state persisted there.
//
// kfake's Error and Warn logs go to logger at the same levels; its Info
// logs go at Debug and its Debug logs below that. A nil logger discards.
// If the port is taken the error wraps [ErrAddrInUse] and names the
// address.
func Start(opts Options, logger *slog.Logger) (*Broker, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	addr, _ := loopback(opts.Addr)
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	b := &Broker{log: &kfakeLogger{l: logger}}
	kopts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ClusterID("sluice"),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(int(opts.Partitions)),
		kfake.WithLogger(b.log),
	}
	if opts.TLS != nil {
		kopts = append(kopts, kfake.TLS(opts.TLS))
	}
	if opts.DataDir != "" {
		dir, err := filepath.Abs(opts.DataDir)
		if err != nil {
			return nil, fmt.Errorf("broker: data directory %q: %w", opts.DataDir, err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("broker: creating data directory: %w", err)
		}
		if b.lock, err = lockDir(dir); err != nil {
			return nil, err
		}
		kopts = append(kopts, kfake.DataDir(dir))
		if opts.SyncWrites {
			kopts = append(kopts, kfake.SyncWrites())
		}
	}

	// We bind the listener ourselves so that the host is ours (kfake
	// always asks for 127.0.0.1) and a taken port yields a useful error.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		b.unlock()
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("%w: %s is taken (is another broker or Kafka running?); choose another address with --broker-addr", ErrAddrInUse, addr)
		}
		return nil, fmt.Errorf("broker: listening on %s: %w", addr, err)
	}
	b.addr = ln.Addr().String()
	handed := false
	kopts = append(kopts, kfake.ListenFn(func(string, string) (net.Listener, error) {
		if handed {
			return nil, errors.New("broker: kfake asked for a second listener")
		}
		handed = true
		return ln, nil
	}))

	if b.cluster, err = kfake.NewCluster(kopts...); err != nil {
		ln.Close()
		b.unlock()
		return nil, fmt.Errorf("broker: starting: %w", err)
	}
	logger.Debug("broker started", "addr", b.addr, "data_dir", opts.DataDir, "tls", opts.TLS != nil)
	return b, nil
}

// Addr returns the host:port the broker is bound to and advertises to
// clients, with the port resolved when Options.Addr asked for port 0.
func (b *Broker) Addr() string { return b.addr }

// Close stops accepting connections, finishes in-flight requests, writes
// the persisted state (with DataDir) and releases the data directory. It
// returns any error kfake reported while persisting. Calls after the
// first return the first call's result.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		b.log.capture(true)
		b.cluster.Close()
		b.closeErr = b.log.capture(false)
		if err := b.unlock(); err != nil && b.closeErr == nil {
			b.closeErr = err
		}
	})
	return b.closeErr
}

func (b *Broker) unlock() error {
	if b.lock == nil {
		return nil
	}
	err := b.lock.Close()
	b.lock = nil
	return err
}
