// Package publish keeps the online store in step with feature tables. A
// feature table is a table with primary keys (the table property
// sluice.primary_key, which a pipeline's PRIMARY KEY clause sets) and an
// optional timestamp key (sluice.timeseries_key). Sync reads the rows the
// table gained since its last sync (table.Changes) and writes them to the
// online store, where a row never replaces a newer one; it then records
// how far it read as a streaming reader of the table, so snapshot expiry
// keeps what it has not published yet.
//
// Sync is at least once: a crash after writing and before recording the
// position rewrites the same rows next time, which the online store's
// newest-wins rule makes harmless. When the table was rewritten (a full
// refresh, an overwrite), Sync clears the table's online rows and
// republishes the whole table; after merges on the primary key only, it
// republishes the whole table without clearing (see [Publisher.Sync]).
package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sluice-dev/sluice/internal/feature/window"
	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/online"
	"github.com/sluice-dev/sluice/internal/table"
)

// Table properties of a feature table.
const (
	PropPrimaryKey = "sluice.primary_key"    // comma-separated key columns (the timestamp key included)
	PropTimeKey    = "sluice.timeseries_key" // the timestamp key column, if any
	PropTTL        = "sluice.ttl"            // how long a row stays valid online, e.g. 7d
	// PropMerge, "true" in the summary of a snapshot that overwrote the
	// table to merge rows on its primary key, says that the rewrite only
	// replaced rows by rows of the same key and a timestamp as new or
	// newer: the online store's newest-wins writes apply it without being
	// cleared first (see [Publisher.Sync]).
	PropMerge  = "sluice.merge"
	PropOnline = "online" // "true": publish continuously
)

// reader is the name Sync registers under as a reader of a table.
const reader = "online"

// ErrNotFeatureTable is returned for a table without primary keys.
var ErrNotFeatureTable = errors.New("publish: not a feature table")

// ErrTTLWithoutTimeKey is wrapped by the error for a feature table
// declared with a TTL but no timestamp key ([TableSpec.Validate]; the
// pipeline compiler refuses the same in SQL). A TTL is measured from a
// row's timestamp key, so without one it has nothing to measure, and a
// training set could not apply it as the online store would.
var ErrTTLWithoutTimeKey = errors.New("ttl needs a timestamp key")

// FeatureTable is a feature table's shape, from its properties and schema.
type FeatureTable struct {
	Name ident.Name
	// Keys are the entity key columns: the primary key without the
	// timestamp key.
	Keys []string
	// TimeKey is the timestamp key column, "" for none.
	TimeKey string
	// Features are the other columns.
	Features []string
	// TTL is how long a row stays valid after its timestamp key; zero for
	// none. It is always zero for a plain feature table without a
	// timestamp key (see [Describe]).
	TTL    time.Duration
	Online bool
	// Window, for a windowed feature table (docs/features.md), says how
	// its feature log aggregates; nil for a plain feature table.
	Window *window.Def
}

// OnlineTable is the online store's table of ft.
func (ft FeatureTable) OnlineTable() online.Table {
	return online.Table{Name: ft.Name.String(), TTL: ft.TTL}
}

// Describe reads the feature-table properties of t.
//
// A plain feature table without a timestamp key has no TTL online, even if
// it has the property (tables declared before such a TTL was refused): a
// training set applies the TTL only to tables with a timestamp key
// (internal/feature), and online values must equal training values.
func Describe(t *table.Table) (FeatureTable, error) {
	props := t.Properties()
	ft := FeatureTable{Name: t.Name(), TimeKey: props[PropTimeKey], Online: strings.EqualFold(props[PropOnline], "true")}
	if err := ft.parseTTL(props); err != nil {
		return ft, fmt.Errorf("%s: %w", t.Name(), err)
	}
	if v := props[window.PropDef]; v != "" {
		def, err := window.ParseDef(v)
		if err != nil {
			return ft, fmt.Errorf("%s: %w", t.Name(), err)
		}
		ft.Window, ft.Keys, ft.TimeKey, ft.Features = def, def.Keys, def.TimeKey, def.FeatureNames()
		return ft, nil
	}
	pk := props[PropPrimaryKey]
	if pk == "" {
		return ft, fmt.Errorf("%w: %s has no primary key: declare PRIMARY KEY (…) in its pipeline", ErrNotFeatureTable, t.Name())
	}
	inKey := map[string]bool{}
	for _, k := range strings.Split(pk, ",") {
		k = strings.TrimSpace(k)
		inKey[k] = true
		if k != ft.TimeKey {
			ft.Keys = append(ft.Keys, k)
		}
	}
	if len(ft.Keys) == 0 {
		return ft, fmt.Errorf("%w: %s: the primary key holds only the timestamp key %s", ErrNotFeatureTable, t.Name(), ft.TimeKey)
	}
	if ft.TimeKey == "" {
		ft.TTL = 0
	}
	for _, f := range t.ArrowSchema().Fields() {
		if !inKey[f.Name] {
			ft.Features = append(ft.Features, f.Name)
		}
	}
	return ft, nil
}

func (ft *FeatureTable) parseTTL(props map[string]string) error {
	v := props[PropTTL]
	if v == "" {
		v = props["ttl"] // TBLPROPERTIES ('ttl' = '7d')
	}
	if v != "" {
		d, err := ParseDuration(v)
		if err != nil {
			return fmt.Errorf("property %s: %w", PropTTL, err)
		}
		ft.TTL = d
	}
	return nil
}

// Get reads the given features of each key from the online store: the
// stored rows of a plain feature table, or, for a windowed one, its
// windows as of now combined from its tiles.
func (ft FeatureTable) Get(ctx context.Context, store online.Store, keys []online.Key, features []string, now time.Time) ([]online.Result, error) {
	if ft.Window == nil {
		return store.Get(ctx, ft.OnlineTable(), keys, features, now)
	}
	idx := make([]int, len(features))
	for i, f := range features {
		if idx[i] = ft.Window.Feature(f); idx[i] < 0 {
			return nil, fmt.Errorf("%w: %s has no feature %s", online.ErrInvalid, ft.Name, f)
		}
	}
	return ft.Window.Read(ctx, store, ft.Name.String(), ft.TTL, keys, idx, now)
}

// ParseDuration reads a duration with units d, h, m, s, ms (7d, 1h30m).
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var total time.Duration
	rest := s
	for rest != "" {
		if i := strings.IndexByte(rest, 'd'); i > 0 && isDigits(rest[:i]) {
			var n int64
			fmt.Sscan(rest[:i], &n)
			total += time.Duration(n) * 24 * time.Hour
			rest = rest[i+1:]
			continue
		}
		d, err := time.ParseDuration(rest)
		if err != nil {
			return 0, fmt.Errorf("duration %q: use a number with d, h, m or s, e.g. 7d or 36h", s)
		}
		total += d
		break
	}
	if total <= 0 {
		return 0, fmt.Errorf("duration %q must be positive", s)
	}
	return total, nil
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// Publisher syncs feature tables to an online store. It is safe for
// concurrent use; syncs of one table are serialised.
type Publisher struct {
	tables *table.Store
	store  online.Store
	logger *slog.Logger

	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

// New returns a publisher from tables to store.
func New(tables *table.Store, store online.Store, logger *slog.Logger) *Publisher {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Publisher{tables: tables, store: store, logger: logger, locks: map[string]*sync.Mutex{}}
}

// Store is the online store.
func (p *Publisher) Store() online.Store { return p.store }

// Stats says what a Sync did.
type Stats struct {
	Table    string `json:"table"`
	Rows     int64  `json:"rows_written"`
	Full     bool   `json:"full"` // the whole table was republished
	Snapshot int64  `json:"snapshot_id"`
}

func (p *Publisher) lock(name string) *sync.Mutex {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.locks[name]
	if l == nil {
		l = &sync.Mutex{}
		p.locks[name] = l
	}
	return l
}

// Sync publishes the rows table name gained since its last sync. A full
// sync (the table's first, or after a rewrite: a full refresh, an
// overwrite, or expired history) first clears the table's online rows and
// then writes the whole table, so that the online store holds exactly the
// table's rows: entities the table lost are gone and rows that moved to an
// older timestamp replace the newer ones. Until it finishes, reads of the
// table may find fewer rows. A rewrite that only merged rows on the
// primary key ([PropMerge]) loses no entity and moves no row back in time:
// its full sync writes the whole table over the online rows without
// clearing them, so reads never miss. If a sync fails part way, the next
// one is full again.
func (p *Publisher) Sync(ctx context.Context, name ident.Name) (Stats, error) {
	l := p.lock(name.String())
	l.Lock()
	defer l.Unlock()
	st := Stats{Table: name.String()}
	t, err := p.tables.Load(ctx, name)
	if err != nil {
		return st, err
	}
	ft, err := Describe(t)
	if err != nil {
		return st, err
	}
	from, err := p.tables.Reader(ctx, name, reader)
	if err != nil {
		return st, err
	}
	ch, err := t.Changes(ctx, from, table.ChangesOptions{})
	clear := from == 0
	if errors.Is(err, table.ErrRewritten) || errors.Is(err, table.ErrHistoryExpired) {
		st.Full, clear = true, true
		if errors.Is(err, table.ErrRewritten) {
			clear = !onlyMerges(t, from)
		}
		ch, err = t.Changes(ctx, 0, table.ChangesOptions{})
	}
	if err != nil {
		return st, fmt.Errorf("syncing %s: %w", name, err)
	}
	st.Snapshot = ch.To
	if ch.To == from && !st.Full {
		return st, nil
	}
	if from == 0 {
		st.Full = true
	}
	if ft.Window != nil {
		return p.syncWindowed(ctx, t, ft, ch, st)
	}
	if clear {
		// The table may have lost entities or moved rows to older
		// timestamps, which newest-wins writes cannot undo: start empty.
		// Merges on the primary key do neither, and a table that many
		// writers update by merges would otherwise read as empty after
		// each of them, until the full sync is done.
		if err := p.store.DeleteTable(ctx, name.String()); err != nil {
			return st, fmt.Errorf("syncing %s: clearing its online rows: %w", name, err)
		}
	}
	cols := append(append(append([]string{}, ft.Keys...), ft.Features...), ft.TimeKey)
	if ft.TimeKey == "" {
		cols = cols[:len(cols)-1]
	}
	rdr, err := t.ReadFiles(ctx, ch.Files, cols)
	if err != nil {
		return st, err
	}
	defer rdr.Release()
	version := uint64(ch.ToTime.UnixMilli())
	for rdr.Next() {
		rows, err := toRows(ft, rdr.RecordBatch(), ch.ToTime, version)
		if err != nil {
			return st, fmt.Errorf("syncing %s: %w", name, err)
		}
		if err := p.store.Write(ctx, ft.OnlineTable(), rows); err != nil {
			return st, fmt.Errorf("syncing %s: writing to the online store: %w", name, err)
		}
		st.Rows += int64(len(rows))
	}
	if err := rdr.Err(); err != nil {
		return st, err
	}
	if err := p.tables.SetReader(ctx, name, reader, ch.To, ch.ToTime); err != nil {
		return st, err
	}
	p.logger.Debug("feature table synced", "table", name.String(), "rows", st.Rows, "full", st.Full)
	return st, nil
}

// onlyMerges reports whether every snapshot of t after from that rewrote
// rows was a merge on the primary key ([PropMerge]).
func onlyMerges(t *table.Table, from int64) bool {
	rw, err := t.Rewrites(from)
	if err != nil || len(rw) == 0 {
		return false
	}
	for _, props := range rw {
		if props[PropMerge] != "true" {
			return false
		}
	}
	return true
}

// toRows converts a batch of [keys..., features..., timekey] to online
// rows. Rows without a timestamp key get the commit time.
func toRows(ft FeatureTable, b arrow.RecordBatch, commit time.Time, version uint64) ([]online.Row, error) {
	nk, nf := len(ft.Keys), len(ft.Features)
	names := ft.Features
	rows := make([]online.Row, b.NumRows())
	for i := range rows {
		r := &rows[i]
		r.Key = make(online.Key, nk)
		for k := range nk {
			r.Key[k] = Value(b.Column(k), i)
		}
		r.Names = names
		r.Values = make([]online.Value, nf)
		for f := range nf {
			r.Values[f] = Value(b.Column(nk+f), i)
		}
		r.EventTime, r.Version = commit, version
		if ft.TimeKey != "" {
			tc := b.Column(nk + nf)
			if tc.IsNull(i) {
				return nil, fmt.Errorf("row with a null timestamp key %s", ft.TimeKey)
			}
			v := Value(tc, i)
			r.EventTime = time.Unix(0, v.TimeNanos()).UTC()
		}
	}
	return rows, nil
}

// Value converts row i of a to an online value.
func Value(a arrow.Array, i int) online.Value { return window.ArrowValue(a, i) }

// Resync is a full [Publisher.Sync]: it forgets how far the table was
// synced, clears the table's online rows and writes the whole table, for
// an online store that was emptied or replaced (a Redis FLUSHDB, another
// --online URL) behind the catalog's back, which Sync cannot notice.
func (p *Publisher) Resync(ctx context.Context, name ident.Name) (Stats, error) {
	st := Stats{Table: name.String()}
	t, err := p.tables.Load(ctx, name)
	if err != nil {
		return st, err
	}
	if _, err := Describe(t); err != nil {
		return st, err
	}
	l := p.lock(name.String())
	l.Lock()
	err = p.tables.SetReader(ctx, name, reader, 0, time.Time{})
	l.Unlock()
	if err != nil {
		return st, fmt.Errorf("resyncing %s: %w", name, err)
	}
	return p.Sync(ctx, name)
}

// Publish marks table name online (the table property online = true) and
// syncs it, so that pipelines keep it synced after every commit.
func (p *Publisher) Publish(ctx context.Context, name ident.Name) (Stats, error) {
	t, err := p.tables.Load(ctx, name)
	if err != nil {
		return Stats{}, err
	}
	if _, err := Describe(t); err != nil {
		return Stats{}, err
	}
	if err := p.tables.SetProperties(ctx, name, map[string]string{PropOnline: "true"}); err != nil {
		return Stats{}, err
	}
	return p.Sync(ctx, name)
}

// SyncIfOnline syncs table name if it is marked online (by its pipeline's
// TBLPROPERTIES or by Publish); it is what runs after each pipeline commit.
func (p *Publisher) SyncIfOnline(ctx context.Context, name ident.Name) error {
	t, err := p.tables.Load(ctx, name)
	if err != nil {
		return err
	}
	if !strings.EqualFold(t.Properties()[PropOnline], "true") {
		return nil
	}
	_, err = p.Sync(ctx, name)
	return err
}

// syncWindowed folds the feature-log rows of ch into the online tiles of
// a windowed feature table; a full sync starts from empty tiles.
func (p *Publisher) syncWindowed(ctx context.Context, t *table.Table, ft FeatureTable, ch table.Changes, st Stats) (Stats, error) {
	name := ft.Name.String()
	if st.Full {
		if err := p.store.DeleteTable(ctx, name); err != nil {
			return st, fmt.Errorf("syncing %s: clearing its online tiles: %w", name, err)
		}
	}
	def := ft.Window
	cols := append(append(append([]string{}, ft.Keys...), ft.TimeKey), ft.Features...)
	nk, nf := len(ft.Keys), len(ft.Features)
	var fileInSeq, prevSeq int64 = -1, -1
	for _, f := range ch.Files {
		if f.Seq != prevSeq {
			prevSeq, fileInSeq = f.Seq, 0
		} else {
			fileInSeq++
		}
		rdr, err := t.ReadFiles(ctx, []table.ChangedFile{f}, cols)
		if err != nil {
			return st, err
		}
		var row int64
		for rdr.Next() {
			b := rdr.RecordBatch()
			events := make([]window.Event, 0, b.NumRows())
			tc, ok := b.Column(nk).(*array.Timestamp)
			if !ok {
				rdr.Release()
				return st, fmt.Errorf("syncing %s: timestamp column %s is %s, not a timestamp", name, ft.TimeKey, b.Column(nk).DataType())
			}
			unit := tc.DataType().(*arrow.TimestampType).Unit
			for i := range int(b.NumRows()) {
				pos := window.Pos{Seq: f.Seq, File: fileInSeq, Row: row}
				row++
				if tc.IsNull(i) {
					continue
				}
				e := window.Event{Key: make(online.Key, nk), TS: tc.Value(i).ToTime(unit).UnixMicro(), Pos: pos, Inputs: make([]online.Value, nf)}
				for k := range nk {
					e.Key[k] = Value(b.Column(k), i)
				}
				for j := range nf {
					e.Inputs[j] = Value(b.Column(nk+1+j), i)
				}
				events = append(events, e)
			}
			if err := def.Fold(ctx, p.store, name, ft.TTL, events, time.Now()); err != nil {
				rdr.Release()
				return st, fmt.Errorf("syncing %s: %w", name, err)
			}
			st.Rows += int64(len(events))
		}
		err = rdr.Err()
		rdr.Release()
		if err != nil {
			return st, err
		}
	}
	if err := p.tables.SetReader(ctx, ft.Name, reader, ch.To, ch.ToTime); err != nil {
		return st, err
	}
	p.logger.Debug("windowed feature table synced", "table", name, "rows", st.Rows, "full", st.Full)
	return st, nil
}
