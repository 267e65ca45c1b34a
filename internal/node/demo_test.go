package node_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/cli"
	"github.com/sluice-dev/sluice/internal/demo"
	"github.com/sluice-dev/sluice/internal/pipeline"
	"github.com/sluice-dev/sluice/internal/source/kafka"
	"github.com/sluice-dev/sluice/internal/table"
	"github.com/sluice-dev/sluice/internal/testutil/sluicetest"
)

// runningUp is `sluice up` running in this process through the CLI.
type runningUp struct {
	out, err *syncBuffer
	cancel   context.CancelFunc
	exit     chan int
	api      *sluicetest.Client
	broker   string
}

var upLine = regexp.MustCompile(`sluice is up: REST API (\S+), Kafka bootstrap (\S+), data in `)

// startUp runs `sluice up args...` via cli.Run until stop, and waits
// (bounded) until it reports that it is up.
func startUp(t *testing.T, args ...string) *runningUp {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	u := &runningUp{out: &syncBuffer{}, err: &syncBuffer{}, cancel: cancel, exit: make(chan int, 1)}
	go func() { u.exit <- cli.Run(ctx, append([]string{"up"}, args...), cli.Env{Out: u.out, Err: u.err}) }()
	t.Cleanup(func() { u.stop(t) })
	sluicetest.Eventually(t, 30*time.Second, "sluice up reporting it is up", func() (bool, string) {
		select {
		case code := <-u.exit:
			u.exit <- code
			t.Fatalf("sluice up exited with %d before it was up:\n%s%s", code, u.out, u.err)
		default:
		}
		m := upLine.FindStringSubmatch(u.out.String())
		if m == nil {
			return false, u.out.String()
		}
		u.api = sluicetest.NewClient(m[1], "")
		u.broker = m[2]
		return true, ""
	})
	return u
}

// stop cancels the command's context (what SIGINT does) and checks that it
// exits cleanly within a bound. It may be called more than once.
func (u *runningUp) stop(t *testing.T) {
	t.Helper()
	u.cancel()
	select {
	case code := <-u.exit:
		u.exit <- code
		if code != 0 {
			t.Errorf("sluice up exited with %d:\n%s", code, u.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("sluice up still running 30s after cancel:\n%s", u.err)
	}
}

// TestUpDemo runs `sluice up --demo` on free ports, checks that the demo
// stream ingests and quarantines orders, stops it, starts it again on the
// same data directory and broker port, and checks that the demo stream
// resumes (it is not created again) without losing or duplicating a
// record.
func TestUpDemo(t *testing.T) {
	data := t.TempDir()
	args := []string{"--demo", "--demo-rate", "400", "--data", data, "--http", "127.0.0.1:0", "--log-level", "info"}
	u := startUp(t, append(args, "--broker-addr", "127.0.0.1:0")...)
	if !strings.Contains(u.out.String(), "Demo: orders are produced to topic orders") {
		t.Errorf("no demo help in the output:\n%s", u.out)
	}
	waitDemoRows := func(u *runningUp, minRows, minQuarantined int64) {
		t.Helper()
		sluicetest.Eventually(t, 30*time.Second, "the demo stream ingesting", func() (bool, string) {
			s, err := u.api.Stream(t.Context(), demo.StreamName)
			if err != nil {
				return false, err.Error()
			}
			st := s.Status
			return st.RowsIngested >= minRows && st.RowsQuarantined >= minQuarantined,
				fmt.Sprintf("%+v", st)
		})
	}
	waitDemoRows(u, 1, 1)
	for _, want := range []string{"sluice pipeline status " + demo.Pipeline, "sluice table show " + demo.Revenue,
		"sluice feature-table get " + demo.Features, "/get-online-features -d '{\"features\": [\"" + demo.Features + ":orders_1h\""} {
		if !strings.Contains(u.out.String(), want) {
			t.Errorf("the demo help does not show %q:\n%s", want, u.out)
		}
	}
	waitDemoPipeline(t, u)
	waitDemoFeatures(t, u)
	first := u.api.MustStream(t, demo.StreamName)
	u.stop(t)
	if strings.Contains(u.err.String(), "level=ERROR") {
		t.Errorf("errors logged by the first run:\n%s", u.err)
	}
	var firstRows int
	withStore(t, data, func(s *table.Store) {
		firstRows = len(scanTable(t, s, demo.Destination, "order_id"))
	})
	t.Logf("first run: %d rows ingested, stream created at %v", firstRows, first.CreatedAt)

	// The stream's spec records the broker's address, so the second run
	// serves the broker on the same port.
	u2 := startUp(t, append(args, "--broker-addr", u.broker)...)
	waitDemoRows(u2, int64(firstRows)+200, 1)
	second := u2.api.MustStream(t, demo.StreamName)
	if !second.CreatedAt.Equal(first.CreatedAt) || string(second.StartOffsets) != string(first.StartOffsets) || second.Owner != "demo" {
		t.Errorf("the demo stream was created again: first %v %s, then %v %s (owner %s)",
			first.CreatedAt, first.StartOffsets, second.CreatedAt, second.StartOffsets, second.Owner)
	}
	if strings.Contains(u2.err.String(), `msg="stream created"`) {
		t.Errorf("the second run created a stream:\n%s", u2.err)
	}
	if strings.Contains(u2.err.String(), `msg="demo pipeline created"`) || !strings.Contains(u2.err.String(), `msg="pipeline resumed" pipeline=`+demo.Pipeline) {
		t.Errorf("the second run did not resume the demo pipeline:\n%s", u2.err)
	}
	waitDemoPipeline(t, u2)
	u2.stop(t)
	if strings.Contains(u2.err.String(), "level=ERROR") {
		t.Errorf("errors logged by the second run:\n%s", u2.err)
	}

	// Every record from the stream's start offsets up to the last one read
	// is in exactly one of the two tables, once.
	start, err := kafka.DecodeOffsets(string(first.StartOffsets))
	if err != nil {
		t.Fatal(err)
	}
	withStore(t, data, func(s *table.Store) {
		rows := scanTable(t, s, demo.Destination, "order_id")
		q := scanTable(t, s, demo.Destination+"_quarantine", "")
		t.Logf("after both runs: %d rows, %d quarantined", len(rows), len(q))
		// The pipeline holds each ingested order it has processed once.
		ingested := map[string]bool{}
		for _, r := range rows {
			ingested[r.Value] = true
		}
		// The restarted generator continues the order ids.
		if len(ingested) != len(rows) {
			t.Errorf("%d ingested orders have %d distinct ids: a restarted demo repeats order ids", len(rows), len(ingested))
		}
		silver := map[string]bool{}
		for _, r := range readRows(t, s, demo.Silver) {
			id, _ := r["order_id"].(string)
			if silver[id] || !ingested[id] {
				t.Errorf("%s: order %q is a duplicate or was not ingested", demo.Silver, id)
			}
			silver[id] = true
		}
		t.Logf("%s: %d orders", demo.Silver, len(silver))
		seen := map[pos]string{}
		high := map[int32]int64{}
		for _, r := range append(rows, q...) {
			k := pos{r.Partition, r.Offset}
			if prev, dup := seen[k]; dup {
				t.Errorf("offset %d@%d is in the tables twice: %q and %q", r.Partition, r.Offset, prev, r.Value)
			}
			seen[k] = r.Value
			high[r.Partition] = max(high[r.Partition], r.Offset+1)
		}
		for p, h := range high {
			from, _ := start.Get(demo.Topic, p)
			for o := from; o < h; o++ {
				if _, ok := seen[pos{p, o}]; !ok {
					t.Errorf("offset %d@%d is in neither table (partition read up to %d)", p, o, h)
				}
			}
		}
	})
}

// waitDemoPipeline waits until the demo pipeline, in this run, has written
// validated orders and counted its expectations.
func waitDemoPipeline(t *testing.T, u *runningUp) {
	t.Helper()
	sluicetest.Eventually(t, 30*time.Second, "the demo pipeline validating orders", func() (bool, string) {
		var info pipeline.Info
		if err := u.api.Do(t.Context(), "GET", "/api/v1/pipelines/"+demo.Pipeline, nil, http.StatusOK, &info); err != nil {
			return false, err.Error()
		}
		if info.State != "running" || info.Owner != "demo" {
			return false, fmt.Sprintf("state %s (%s), owner %s", info.State, info.Error, info.Owner)
		}
		tb, err := u.api.Table(t.Context(), demo.Silver)
		if err != nil {
			return false, err.Error()
		}
		for _, d := range info.Datasets {
			if d.Name != demo.Silver {
				continue
			}
			passed := 0
			for _, e := range d.Expectations {
				if e.Passed > 0 {
					passed++
				}
			}
			return tb.Rows > 0 && passed == 3, fmt.Sprintf("%d silver rows, expectations %+v", tb.Rows, d.Expectations)
		}
		return false, fmt.Sprintf("no dataset %s in %+v", demo.Silver, info.Datasets)
	})
}

// waitDemoFeatures waits until the demo's windowed features of its regular
// customers are served online, as the demo help shows them: some regular
// has orders in the last hour, and every served value is consistent (spend
// only where there are orders, a last product wherever there are orders).
func waitDemoFeatures(t *testing.T, u *runningUp) {
	t.Helper()
	regulars := make([]string, demo.Regulars)
	for i := range regulars {
		regulars[i] = fmt.Sprintf("c%05d", i)
	}
	sluicetest.Eventually(t, 60*time.Second, "the demo features served online", func() (bool, string) {
		var resp struct {
			Metadata struct {
				FeatureNames []string `json:"feature_names"`
			} `json:"metadata"`
			Results feastResults `json:"results"`
		}
		err := u.api.Do(t.Context(), "POST", "/get-online-features", map[string]any{
			"features": demo.FeatureNames,
			"entities": map[string][]string{"customer_id": regulars},
		}, http.StatusOK, &resp)
		if err != nil {
			return false, err.Error()
		}
		if len(resp.Results) != 1+len(demo.FeatureNames) {
			return false, fmt.Sprintf("%d results for %v", len(resp.Results), resp.Metadata.FeatureNames)
		}
		orders, last := resp.Results[1], resp.Results[5]
		served := 0
		for i := range regulars {
			if orders.Statuses[i] != "PRESENT" {
				continue
			}
			n, _ := orders.Values[i].(float64)
			if n < 1 || last.Values[i] == nil {
				t.Errorf("customer %s: orders_1h %v with last_product %v", regulars[i], orders.Values[i], last.Values[i])
			}
			served++
		}
		return served > 0, fmt.Sprintf("orders_1h %v %v", orders.Values, orders.Statuses)
	})
}
