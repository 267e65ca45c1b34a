package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/node"
	"github.com/sluice-dev/sluice/internal/online"
	"github.com/sluice-dev/sluice/internal/table"
)

// serverChild runs one server (the do-nothing floor, or a sluice node with
// the embedded store or Redis), prints "READY <url>" and then answers
// commands on stdin, one per line, until stdin closes:
//
//	stats              -> "STATS <cpu ns> <mallocs> <bytes allocated> <GCs>"
//	cpuprofile <path>  starts a CPU profile  -> "OK"
//	stopcpu            stops it              -> "OK"
//	allocs <path>      writes the allocation profile -> "OK"
func serverChild(store, online string, entities int) error {
	var url string
	switch store {
	case "floor":
		u, stop, err := startFloor()
		if err != nil {
			return err
		}
		defer stop()
		url = u
	default:
		u, stop, err := startNode(online, entities)
		if err != nil {
			return err
		}
		defer stop()
		url = u
	}
	runtime.GC()
	fmt.Println("READY", url)
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		switch cmd {
		case "stats":
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			fmt.Println("STATS", int64(cpuNow()), ms.Mallocs, ms.TotalAlloc, ms.NumGC)
			continue
		case "cpuprofile":
			f, err := os.Create(arg)
			if err != nil {
				return err
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
		case "stopcpu":
			pprof.StopCPUProfile()
		case "allocs":
			f, err := os.Create(arg)
			if err != nil {
				return err
			}
			if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unknown command %q", sc.Text())
		}
		fmt.Println("OK")
	}
	return sc.Err()
}

// startFloor starts a do-nothing HTTP server: what the machine, the
// loopback network and net/http cost.
func startFloor() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	})}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// startNode starts a node with the given online store ("" embedded) and a
// feature table of n entities × 10 float features, synced online. It
// returns the API URL.
func startNode(onlineURL string, n int) (string, func(), error) {
	dir, err := os.MkdirTemp("", "sluice-bench-serving-")
	if err != nil {
		return "", nil, err
	}
	ctx := context.Background()
	nd, err := node.Start(ctx, node.Options{DataDir: dir, BrokerAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Online: onlineURL},
		slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return "", nil, err
	}
	stop := func() { nd.Close(); os.RemoveAll(dir) }
	name, _ := ident.Parse(tableName)
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
		stop()
		return "", nil, err
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
	defer rec.Release()
	if err := t.Append(ctx, []arrow.RecordBatch{rec}, nil); err != nil {
		stop()
		return "", nil, err
	}
	if _, err := nd.Publisher.Sync(ctx, name); err != nil {
		stop()
		return "", nil, err
	}
	// Read every entity once, as a server that has been serving for a
	// while would have: the embedded store's block cache holds the table.
	features := make([]string, nFeatures)
	for i := range features {
		features[i] = fmt.Sprintf("f%d", i)
	}
	for start := 0; start < n; start += 1000 {
		keys := make([]online.Key, 0, 1000)
		for e := start; e < min(n, start+1000); e++ {
			keys = append(keys, online.Key{online.String(fmt.Sprintf("e%d", e))})
		}
		if _, err := nd.Online.Get(ctx, online.Table{Name: tableName}, keys, features, time.Time{}); err != nil {
			stop()
			return "", nil, err
		}
	}
	return nd.URL(), stop, nil
}

// cpuNow is this process's CPU time (user + system).
func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
