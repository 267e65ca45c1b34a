package publish_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/online"
	"github.com/sluice-dev/sluice/internal/publish"
	"github.com/sluice-dev/sluice/internal/table"
	"github.com/sluice-dev/sluice/internal/testutil/sluicetest"
)

// newTables opens a real table store on a SQLite catalog in t.TempDir().
func newTables(t *testing.T) *table.Store {
	t.Helper()
	dir := t.TempDir()
	db, err := table.OpenSQLite(filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := table.Open(sluicetest.Context(t), table.Options{DB: db, Warehouse: filepath.Join(dir, "warehouse")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// stores opens each online store behind one name: the embedded one and a
// Redis of its own (skipped without redis-server, failed under CI=true).
var stores = map[string]func(t *testing.T) online.Store{
	"embedded": func(t *testing.T) online.Store {
		s, err := online.OpenEmbedded(t.TempDir(), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	},
	"redis": func(t *testing.T) online.Store {
		s, err := online.OpenRedis(sluicetest.Context(t), nil, online.RedisOptions{URL: sluicetest.RedisServer(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	},
}

var userSchema = arrow.NewSchema([]arrow.Field{
	{Name: "user_id", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
	{Name: "score", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
}, nil)

type userRow struct {
	user  string
	ts    time.Time
	score float64
}

func userRecord(rows []userRow) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, userSchema)
	defer b.Release()
	for _, r := range rows {
		b.Field(0).(*array.StringBuilder).Append(r.user)
		b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(r.ts.UnixMicro()))
		b.Field(2).(*array.Float64Builder).Append(r.score)
	}
	return b.NewRecordBatch()
}

// readOnline reads the scores of users through ft as serving does, as
// "user=score@ts" (ts only with a timestamp key) or "user=STATUS".
func readOnline(t *testing.T, store online.Store, ft publish.FeatureTable, users []string, now time.Time) []string {
	t.Helper()
	keys := make([]online.Key, len(users))
	for i, u := range users {
		keys[i] = online.Key{online.String(u)}
	}
	res, err := ft.Get(sluicetest.Context(t), store, keys, []string{"score"}, now)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(users))
	for i, r := range res {
		switch {
		case r.Statuses[0] != online.Present:
			out[i] = fmt.Sprintf("%s=%s", users[i], r.Statuses[0])
		case ft.TimeKey != "":
			out[i] = fmt.Sprintf("%s=%v@%s", users[i], r.Values[0].Float64(), r.EventTime.Format("15:04"))
		default:
			out[i] = fmt.Sprintf("%s=%v", users[i], r.Values[0].Float64())
		}
	}
	return out
}

// TestFullSyncReplacesOnlineRows overwrites a synced feature table (a full
// refresh) so that an entity is gone, another moved to an older timestamp
// and a third is new: after the full sync the online store holds exactly
// the table's rows, in both stores, with and without a timestamp key.
// Newest-wins writes alone kept the gone entity and the newer row.
func TestFullSyncReplacesOnlineRows(t *testing.T) {
	at := func(hhmm string) time.Time {
		ts, err := time.Parse(time.RFC3339, "2026-03-01T"+hhmm+":00Z")
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	before := []userRow{{"u1", at("10:00"), 1}, {"u2", at("10:05"), 2}, {"u3", at("10:00"), 3}}
	after := []userRow{{"u1", at("10:00"), 1}, {"u2", at("09:00"), 20}, {"u4", at("09:30"), 4}}
	users := []string{"u1", "u2", "u3", "u4"}
	cases := map[string]struct {
		props      map[string]string
		wantBefore string
		wantAfter  string
	}{
		"timestamp key": {
			props:      map[string]string{publish.PropPrimaryKey: "user_id,ts", publish.PropTimeKey: "ts"},
			wantBefore: "[u1=1@10:00 u2=2@10:05 u3=3@10:00 u4=NOT_FOUND]",
			wantAfter:  "[u1=1@10:00 u2=20@09:00 u3=NOT_FOUND u4=4@09:30]",
		},
		"no timestamp key": {
			props:      map[string]string{publish.PropPrimaryKey: "user_id"},
			wantBefore: "[u1=1 u2=2 u3=3 u4=NOT_FOUND]",
			wantAfter:  "[u1=1 u2=20 u3=NOT_FOUND u4=4]",
		},
	}
	for storeName, open := range stores {
		for name, tc := range cases {
			t.Run(storeName+"/"+name, func(t *testing.T) {
				ctx := sluicetest.Context(t)
				tables, store := newTables(t), open(t)
				p := publish.New(tables, store, nil)
				tn, _ := ident.Parse("main.features.user_score")
				tbl, err := tables.Create(ctx, tn, userSchema, table.CreateOptions{Properties: tc.props})
				if err != nil {
					t.Fatal(err)
				}
				rec := userRecord(before)
				defer rec.Release()
				if err := tbl.Append(ctx, []arrow.RecordBatch{rec}, nil); err != nil {
					t.Fatal(err)
				}
				if _, err := p.Sync(ctx, tn); err != nil {
					t.Fatal(err)
				}
				ft, err := publish.Describe(tbl)
				if err != nil {
					t.Fatal(err)
				}
				if got := fmt.Sprint(readOnline(t, store, ft, users, time.Time{})); got != tc.wantBefore {
					t.Fatalf("before the refresh: online %s, want %s", got, tc.wantBefore)
				}

				rec2 := userRecord(after)
				defer rec2.Release()
				if err := tbl.Overwrite(ctx, []arrow.RecordBatch{rec2}, nil); err != nil {
					t.Fatal(err)
				}
				st, err := p.Sync(ctx, tn)
				if err != nil {
					t.Fatal(err)
				}
				if !st.Full || st.Rows != int64(len(after)) {
					t.Fatalf("sync after the overwrite: %+v, want a full sync of %d rows", st, len(after))
				}
				if got := fmt.Sprint(readOnline(t, store, ft, users, time.Time{})); got != tc.wantAfter {
					t.Fatalf("after the refresh: online %s, want the table's rows %s", got, tc.wantAfter)
				}
			})
		}
	}
}

// TestTTLWithoutTimestampKey: a table declared with ttl before that was
// refused keeps its values online past the ttl, as a training set (which
// applies a TTL only to tables with a timestamp key) keeps them; a table
// with a timestamp key expires them.
func TestTTLWithoutTimestampKey(t *testing.T) {
	cases := map[string]struct {
		props map[string]string
		want  string
	}{
		"no timestamp key": {
			props: map[string]string{publish.PropPrimaryKey: "user_id", "ttl": "1m"},
			want:  "[u1=1]",
		},
		"timestamp key": {
			props: map[string]string{publish.PropPrimaryKey: "user_id,ts", publish.PropTimeKey: "ts", publish.PropTTL: "1m"},
			want:  "[u1=OUTSIDE_MAX_AGE]",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := sluicetest.Context(t)
			tables, store := newTables(t), stores["embedded"](t)
			tn, _ := ident.Parse("main.features.legacy")
			tbl, err := tables.Create(ctx, tn, userSchema, table.CreateOptions{Properties: tc.props})
			if err != nil {
				t.Fatal(err)
			}
			rec := userRecord([]userRow{{"u1", time.Now().UTC(), 1}})
			defer rec.Release()
			if err := tbl.Append(ctx, []arrow.RecordBatch{rec}, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := publish.New(tables, store, nil).Sync(ctx, tn); err != nil {
				t.Fatal(err)
			}
			ft, err := publish.Describe(tbl)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(readOnline(t, store, ft, []string{"u1"}, time.Now().Add(time.Hour))); got != tc.want {
				t.Fatalf("an hour later: online %s, want %s", got, tc.want)
			}
		})
	}
}

// TestTableSpecTTLNeedsTimestampKey: `feature-table create` (CLI and API)
// refuses a ttl without a timestamp key, naming the table and the fix.
func TestTableSpecTTLNeedsTimestampKey(t *testing.T) {
	cases := map[string]struct {
		spec    string
		wantErr string // "" for valid
	}{
		"ttl without timestamp key": {
			spec:    "name: main.features.user_profile\nprimary_keys: [user_id]\nschema: \"user_id STRING, tier STRING\"\nttl: 30d\n",
			wantErr: "main.features.user_profile: ttl needs a timestamp key: set timestamp_key to a TIMESTAMP or DATE column, or drop ttl",
		},
		"ttl with timestamp key": {
			spec: "name: main.features.user_profile\nprimary_keys: [user_id]\ntimestamp_key: as_of\nschema: \"user_id STRING, as_of TIMESTAMP, tier STRING\"\nttl: 30d\n",
		},
		"no ttl": {
			spec: "name: main.features.user_profile\nprimary_keys: [user_id]\nschema: \"user_id STRING, tier STRING\"\n",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, err := publish.ParseTableSpec([]byte(tc.spec))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want …%s…", err, tc.wantErr)
			}
			if !errors.Is(err, publish.ErrInvalidSpec) || !errors.Is(err, publish.ErrTTLWithoutTimeKey) {
				t.Fatalf("error %v is not ErrInvalidSpec and ErrTTLWithoutTimeKey", err)
			}
		})
	}
}

// deleteCounter is an online store that counts DeleteTable calls.
type deleteCounter struct {
	online.Store
	deletes int
}

func (d *deleteCounter) DeleteTable(ctx context.Context, table string) error {
	d.deletes++
	return d.Store.DeleteTable(ctx, table)
}

// TestMergeSyncDoesNotClear: a merge on the primary key (an overwrite
// marked publish.PropMerge, as pipelines and feature-table writes make it)
// is synced in full without clearing the table's online rows first, so
// reads never find the table empty in between; any other overwrite clears
// them.
func TestMergeSyncDoesNotClear(t *testing.T) {
	ts := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for storeName, open := range stores {
		t.Run(storeName, func(t *testing.T) {
			ctx := sluicetest.Context(t)
			tables := newTables(t)
			store := &deleteCounter{Store: open(t)}
			p := publish.New(tables, store, nil)
			tn, _ := ident.Parse("main.features.user_score")
			tbl, err := tables.Create(ctx, tn, userSchema, table.CreateOptions{Properties: map[string]string{
				publish.PropPrimaryKey: "user_id,ts", publish.PropTimeKey: "ts"}})
			if err != nil {
				t.Fatal(err)
			}
			write := func(overwrite bool, props map[string]string, rows ...userRow) {
				t.Helper()
				rec := userRecord(rows)
				defer rec.Release()
				if overwrite {
					err = tbl.Overwrite(ctx, []arrow.RecordBatch{rec}, props)
				} else {
					err = tbl.Append(ctx, []arrow.RecordBatch{rec}, props)
				}
				if err != nil {
					t.Fatal(err)
				}
				if _, err := p.Sync(ctx, tn); err != nil {
					t.Fatal(err)
				}
			}
			write(false, nil, userRow{"u1", ts, 1}, userRow{"u2", ts, 2})
			first := store.deletes
			ft, err := publish.Describe(tbl)
			if err != nil {
				t.Fatal(err)
			}
			// u2's row at the same time replaced, as a merge does.
			write(true, map[string]string{publish.PropMerge: "true"}, userRow{"u1", ts, 1}, userRow{"u2", ts, 20})
			write(false, nil, userRow{"u3", ts, 3})
			if store.deletes != first {
				t.Errorf("the merge's sync cleared the online rows (%d DeleteTable calls, want %d)", store.deletes, first)
			}
			if got, want := fmt.Sprint(readOnline(t, store, ft, []string{"u1", "u2", "u3"}, ts)), "[u1=1@10:00 u2=20@10:00 u3=3@10:00]"; got != want {
				t.Errorf("after the merge: online %s, want %s", got, want)
			}
			// Not a merge: the table may have lost rows.
			write(true, nil, userRow{"u1", ts, 1})
			if store.deletes != first+1 {
				t.Errorf("an overwrite's sync made %d DeleteTable calls, want 1", store.deletes-first)
			}
			if got, want := fmt.Sprint(readOnline(t, store, ft, []string{"u1", "u2", "u3"}, ts)), "[u1=1@10:00 u2=NOT_FOUND u3=NOT_FOUND]"; got != want {
				t.Errorf("after the overwrite: online %s, want %s", got, want)
			}
		})
	}
}
