package node_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sluice-dev/sluice/internal/feature"
	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/online"
	"github.com/sluice-dev/sluice/internal/publish"
	"github.com/sluice-dev/sluice/internal/table"
	"github.com/sluice-dev/sluice/internal/testutil/sluicetest"
)

// TestOnlineParityAfterRewrite checks parity where the online sync and
// training sets used to disagree: a feature table fully rewritten (an
// entity gone, another moved to an older timestamp: the online store kept
// the gone entity and the newer row), and a table with a ttl but no
// timestamp key, as declared before that was refused (online expired its
// rows by commit time; a training set applies no TTL without a timestamp
// key). Values served online, as serving reads them, must equal what a
// training set holds for a label at the read time.
func TestOnlineParityAfterRewrite(t *testing.T) {
	n := sluicetest.StartNode(t)
	ctx := sluicetest.Context(t)
	now := time.Now().UTC().Truncate(time.Second)
	readAt := now.Add(10 * time.Minute) // the read time and the labels' time
	users := []string{"u1", "u2", "u3", "u4"}
	create := func(name string, sc *arrow.Schema, props map[string]string) (ident.Name, *table.Table) {
		t.Helper()
		tn, _ := ident.Parse(name)
		tbl, err := n.Tables.Create(ctx, tn, sc, table.CreateOptions{Properties: props})
		if err != nil {
			t.Fatal(err)
		}
		return tn, tbl
	}
	sync := func(tn ident.Name) {
		t.Helper()
		if _, err := n.Publisher.Sync(ctx, tn); err != nil {
			t.Fatal(err)
		}
	}

	// scores: a timestamp key and a ttl; a full refresh rewrites it.
	scoreSchema := arrow.NewSchema([]arrow.Field{
		{Name: "user_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
		{Name: "score", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil)
	type score struct {
		user    string
		minutes int // before now
		score   float64
	}
	scoreRecord := func(rows ...score) arrow.RecordBatch {
		b := array.NewRecordBuilder(memory.DefaultAllocator, scoreSchema)
		defer b.Release()
		for _, r := range rows {
			b.Field(0).(*array.StringBuilder).Append(r.user)
			b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(now.Add(-time.Duration(r.minutes) * time.Minute).UnixMicro()))
			b.Field(2).(*array.Float64Builder).Append(r.score)
		}
		return b.NewRecordBatch()
	}
	scores, scoresTbl := create("main.parity.scores", scoreSchema, map[string]string{
		publish.PropPrimaryKey: "user_id,ts", publish.PropTimeKey: "ts", publish.PropTTL: "2h"})
	rec := scoreRecord(score{"u1", 20, 1}, score{"u2", 5, 2}, score{"u3", 20, 3})
	if err := scoresTbl.Append(ctx, []arrow.RecordBatch{rec}, nil); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	sync(scores)
	rec = scoreRecord(score{"u1", 20, 1}, score{"u2", 40, 20}, score{"u4", 30, 4})
	if err := scoresTbl.Overwrite(ctx, []arrow.RecordBatch{rec}, nil); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	sync(scores)

	// tiers: no timestamp key, and a ttl far shorter than the read's
	// distance from the commit.
	tierSchema := arrow.NewSchema([]arrow.Field{
		{Name: "user_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "tier", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	tiers, tiersTbl := create("main.parity.tiers", tierSchema, map[string]string{publish.PropPrimaryKey: "user_id", "ttl": "1m"})
	tb := array.NewRecordBuilder(memory.DefaultAllocator, tierSchema)
	for _, ut := range [][2]string{{"u1", "gold"}, {"u2", "silver"}, {"u4", "bronze"}} {
		tb.Field(0).(*array.StringBuilder).Append(ut[0])
		tb.Field(1).(*array.StringBuilder).Append(ut[1])
	}
	rec = tb.NewRecordBatch()
	tb.Release()
	if err := tiersTbl.Append(ctx, []arrow.RecordBatch{rec}, nil); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	sync(tiers)

	// Online, as serving reads it: "-" for no value.
	onlineValues := func(tn ident.Name, feature string) []string {
		t.Helper()
		tbl, err := n.Tables.Load(ctx, tn)
		if err != nil {
			t.Fatal(err)
		}
		ft, err := publish.Describe(tbl)
		if err != nil {
			t.Fatal(err)
		}
		keys := make([]online.Key, len(users))
		for i, u := range users {
			keys[i] = online.Key{online.String(u)}
		}
		res, err := ft.Get(ctx, n.Online, keys, []string{feature}, readAt)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]string, len(users))
		for i, r := range res {
			out[i] = "-"
			switch v := r.Values[0]; {
			case r.Statuses[0] != online.Present:
			case v.Kind() == online.KindString:
				out[i] = v.Str()
			default:
				out[i] = v.String()
			}
		}
		return out
	}
	gotScores, gotTiers := onlineValues(scores, "score"), onlineValues(tiers, "tier")

	// The training set: one label per user at the read time.
	lsc := arrow.NewSchema([]arrow.Field{
		{Name: "user_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "event_timestamp", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
	}, nil)
	lb := array.NewRecordBuilder(memory.DefaultAllocator, lsc)
	for _, u := range users {
		lb.Field(0).(*array.StringBuilder).Append(u)
		lb.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(readAt.UnixMicro()))
	}
	lrec := lb.NewRecordBatch()
	lb.Release()
	defer lrec.Release()
	var wantScores, wantTiers []string
	trainingSet(t, n, lrec, "", []feature.Lookup{
		{Table: scores.String(), LookupKey: feature.Strings{"user_id"}, Features: []string{"score"}},
		{Table: tiers.String(), LookupKey: feature.Strings{"user_id"}, Features: []string{"tier"}},
	}, func(rec arrow.RecordBatch) {
		sc := rec.Column(rec.Schema().FieldIndices("score")[0]).(*array.Float64)
		tr := rec.Column(rec.Schema().FieldIndices("tier")[0]).(*array.String)
		for i := range int(rec.NumRows()) {
			s, r := "-", "-"
			if sc.IsValid(i) {
				s = online.Float64(sc.Value(i)).String()
			}
			if tr.IsValid(i) {
				r = tr.Value(i)
			}
			wantScores, wantTiers = append(wantScores, s), append(wantTiers, r)
		}
	})
	if fmt.Sprint(gotScores) != fmt.Sprint(wantScores) {
		t.Errorf("rewritten table at %s: online serves %v, the training set holds %v", readAt.Format(time.RFC3339), gotScores, wantScores)
	}
	if fmt.Sprint(gotTiers) != fmt.Sprint(wantTiers) {
		t.Errorf("table with a ttl but no timestamp key at %s: online serves %v, the training set holds %v", readAt.Format(time.RFC3339), gotTiers, wantTiers)
	}
	// Not vacuous: the training set holds the rewritten rows and every tier.
	if got, want := fmt.Sprint(wantScores, wantTiers), "[1 20 - 4] [gold silver - bronze]"; got != want {
		t.Errorf("the training set holds %s, want %s", got, want)
	}
}
