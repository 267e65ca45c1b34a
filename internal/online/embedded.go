package online

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
)

// EmbeddedOptions configures [OpenEmbedded]. The zero value is useful:
// every field has a documented default.
type EmbeddedOptions struct {
	// CacheSize is the block cache's size in bytes. Default 64 MiB.
	CacheSize int64
	// MemTableSize is the size of one memtable in bytes. Default 16 MiB.
	MemTableSize uint64
	// BloomBitsPerKey sizes the bloom filters that let a read of a missing
	// entity skip data blocks. Default 10 (about 1% false positives).
	BloomBitsPerKey int
	// SyncWrites makes Write wait until the write-ahead log is synced.
	// Default false: a write survives a crash of the process but the last
	// writes before a crash of the machine may be lost, which a sync that
	// replays from its last committed position repairs (replays are
	// harmless).
	SyncWrites bool
}

// EnsureDefaults fills in the defaults of unset fields.
func (o *EmbeddedOptions) EnsureDefaults() {
	if o.CacheSize == 0 {
		o.CacheSize = 64 << 20
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = 16 << 20
	}
	if o.BloomBitsPerKey == 0 {
		o.BloomBitsPerKey = 10
	}
}

// Validate reports an option out of range.
func (o *EmbeddedOptions) Validate() error {
	switch {
	case o.CacheSize < 0:
		return fmt.Errorf("%w: negative cache size %d", ErrInvalid, o.CacheSize)
	case o.MemTableSize < 1<<20 || o.MemTableSize > 4<<30:
		return fmt.Errorf("%w: memtable size %d outside [1 MiB, 4 GiB]", ErrInvalid, o.MemTableSize)
	case o.BloomBitsPerKey < 1 || o.BloomBitsPerKey > 64:
		return fmt.Errorf("%w: bloom bits per key %d outside [1, 64]", ErrInvalid, o.BloomBitsPerKey)
	}
	return nil
}

// The embedded store's key space:
//
//	formatKey                  -> formatValue
//	'r' uvarint(len(table)) table key  -> row   (see AppendKey and appendRow)
//
// The table name's length prefix keeps one table's keys from being a prefix
// range of another's, so DeleteTable is one range deletion.
const (
	rowSpace    = 'r'
	formatKey   = "\x00sluice.online.format"
	formatValue = "1"
	numStripes  = 256
)

// Embedded is the online store on local disk: a pebble database in a
// directory. Its methods are safe for concurrent use. Writers take per-key
// lock stripes around read-compare-write, so the newer-wins rule holds
// under concurrent writers of this process; the directory is locked
// against other processes.
type Embedded struct {
	db        *pebble.DB
	logger    *slog.Logger
	writeOpts *pebble.WriteOptions
	seed      maphash.Seed

	// closeMu is read-held by every operation and write-held by Close.
	closeMu sync.RWMutex
	closed  bool

	stripes [numStripes]sync.Mutex
	blobMu  sync.Mutex // serialises UpdateBlobs; guards blobs
	blobs   blobCache  // stored values of the blobs UpdateBlobs read or wrote last
}

// OpenEmbedded opens (creating if needed) the embedded store in dir. A nil
// logger discards; a nil opts means the defaults. The caller must Close the
// store; a second process opening the same dir fails while it is open.
func OpenEmbedded(dir string, logger *slog.Logger, opts *EmbeddedOptions) (*Embedded, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var o EmbeddedOptions
	if opts != nil {
		o = *opts
	}
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	cache := pebble.NewCache(o.CacheSize)
	defer cache.Unref() // the DB holds its own reference
	po := &pebble.Options{
		Cache:        cache,
		MemTableSize: o.MemTableSize,
		Logger:       pebbleLogger{logger},
	}
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(o.BloomBitsPerKey)
		// One index block per sstable (no two-level index): a point
		// lookup then seeks one index block and one data block.
		po.Levels[i].IndexBlockSize = 256 << 10
	}
	po.EnsureDefaults()
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("opening online store in %s: %w", dir, err)
	}
	if err := checkFormat(db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("opening online store in %s: %w", dir, err)
	}
	e := &Embedded{db: db, logger: logger, writeOpts: pebble.NoSync, seed: maphash.MakeSeed()}
	if o.SyncWrites {
		e.writeOpts = pebble.Sync
	}
	return e, nil
}

// checkFormat stamps a new database with the format version and refuses
// one stamped with another.
func checkFormat(db *pebble.DB) error {
	v, closer, err := db.Get([]byte(formatKey))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		return db.Set([]byte(formatKey), []byte(formatValue), pebble.Sync)
	case err != nil:
		return fmt.Errorf("reading format: %w", err)
	}
	defer closer.Close()
	if string(v) != formatValue {
		return fmt.Errorf("%w: format %q, want %q", ErrCorrupt, v, formatValue)
	}
	return nil
}

func appendTablePrefix(dst []byte, table string) []byte {
	dst = append(dst, rowSpace)
	dst = appendUvarintLen(dst, len(table))
	return append(dst, table...)
}

func appendUvarintLen(dst []byte, n int) []byte {
	for n >= 0x80 {
		dst = append(dst, byte(n)|0x80)
		n >>= 7
	}
	return append(dst, byte(n))
}

// pending is one row of a Write batch with its encoded key.
type pending struct {
	key    []byte
	row    int
	stripe int
}

// Write implements [Store.Write].
func (e *Embedded) Write(ctx context.Context, t Table, rows []Row) error {
	if err := validateRows(t, rows); err != nil {
		return err
	}
	if len(rows) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	e.closeMu.RLock()
	defer e.closeMu.RUnlock()
	if e.closed {
		return ErrClosed
	}

	// Encode the keys into one arena, then keep only the winning row of
	// each key within the batch: the largest (EventTime, Version), the
	// later row on ties.
	prefix := appendTablePrefix(nil, t.Name)
	arena := make([]byte, 0, len(rows)*(len(prefix)+16))
	ps := make([]pending, len(rows))
	ends := make([]int, len(rows))
	for i := range rows {
		arena = append(arena, prefix...)
		arena = AppendKey(arena, rows[i].Key)
		ends[i] = len(arena)
	}
	start := 0
	for i := range ps {
		key := arena[start:ends[i]:ends[i]]
		ps[i] = pending{key: key, row: i, stripe: int(maphash.Bytes(e.seed, key) % numStripes)}
		start = ends[i]
	}
	if len(ps) > 1 {
		slices.SortStableFunc(ps, func(a, b pending) int {
			if c := bytes.Compare(a.key, b.key); c != 0 {
				return c
			}
			return compareRows(&rows[a.row], &rows[b.row])
		})
		// Keep the last of each run of equal keys.
		out := ps[:0]
		for i := range ps {
			if i+1 < len(ps) && bytes.Equal(ps[i].key, ps[i+1].key) {
				continue
			}
			out = append(out, ps[i])
		}
		ps = out
	}

	// Lock the stripes involved in ascending order (no deadlock between
	// batches), then read, compare and write.
	var locked [numStripes]bool
	for _, p := range ps {
		locked[p.stripe] = true
	}
	for s := range locked {
		if locked[s] {
			e.stripes[s].Lock()
		}
	}
	defer func() {
		for s := range locked {
			if locked[s] {
				e.stripes[s].Unlock()
			}
		}
	}()

	b := e.db.NewBatch()
	defer b.Close()
	var buf, order []byte
	for _, p := range ps {
		r := &rows[p.row]
		order = encodeOrder(order[:0], r.EventTime.UnixNano(), r.Version)
		cur, closer, err := e.db.Get(p.key)
		switch {
		case errors.Is(err, pebble.ErrNotFound):
		case err != nil:
			return fmt.Errorf("reading %s row: %w", t.Name, err)
		default:
			// An undecodable stored row loses to any valid one.
			curOrder, cerr := rowOrder(cur)
			older := cerr == nil && bytes.Compare(order, curOrder) < 0
			closer.Close()
			if older {
				continue
			}
		}
		buf = appendRow(buf[:0], r)
		if err := b.Set(p.key, buf, nil); err != nil {
			return fmt.Errorf("writing %s row: %w", t.Name, err)
		}
	}
	if b.Empty() {
		return nil
	}
	if err := e.db.Apply(b, e.writeOpts); err != nil {
		return fmt.Errorf("writing %s rows: %w", t.Name, err)
	}
	return nil
}

// compareRows orders rows by (EventTime, Version).
func compareRows(a, b *Row) int {
	if c := a.EventTime.Compare(b.EventTime); c != 0 {
		return c
	}
	switch {
	case a.Version < b.Version:
		return -1
	case a.Version > b.Version:
		return 1
	}
	return 0
}

// Get implements [Store.Get]. It reads each key with one point lookup
// (bloom filters, then the block cache).
func (e *Embedded) Get(ctx context.Context, t Table, keys []Key, features []string, now time.Time) ([]Result, error) {
	if t.Name == "" {
		return nil, fmt.Errorf("%w: empty table name", ErrInvalid)
	}
	if now.IsZero() {
		now = time.Now()
	}
	e.closeMu.RLock()
	defer e.closeMu.RUnlock()
	if e.closed {
		return nil, ErrClosed
	}
	l := newLookup(features)
	res := l.results(len(keys))
	var kb [128]byte
	key := appendTablePrefix(kb[:0], t.Name)
	np := len(key)
	for i, k := range keys {
		if i&63 == 63 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		key = AppendKey(key[:np], k)
		val, closer, err := e.db.Get(key)
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s row: %w", t.Name, err)
		}
		err = l.decodeInto(&res[i], t, val, now)
		closer.Close()
		if err != nil {
			return nil, fmt.Errorf("reading %s row %v: %w", t.Name, k, err)
		}
	}
	return res, nil
}

// decodeInto fills r from a stored row.
func (l *lookup) decodeInto(r *Result, t Table, row []byte, now time.Time) error {
	var expired bool
	next := 0 // requests usually list features in stored order: try the next position first
	err := scanRow(row, func(ts int64, version uint64, _ int) {
		expired = setFound(r, t, ts, version, now)
	}, func(name []byte, v Value) {
		i := -1
		if next < len(l.features) && l.features[next] == string(name) && (l.dups == nil || l.dups[next] < 0) {
			i = next
		} else {
			i = l.find(name)
		}
		if i >= 0 {
			l.set(r, i, v, expired)
			next = i + 1
		}
	})
	if err != nil {
		return err
	}
	l.finish(r)
	return nil
}

// DeleteTable implements [Store.DeleteTable] with one range deletion.
func (e *Embedded) DeleteTable(ctx context.Context, table string) error {
	if table == "" {
		return fmt.Errorf("%w: empty table name", ErrInvalid)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	e.closeMu.RLock()
	defer e.closeMu.RUnlock()
	if e.closed {
		return ErrClosed
	}
	start := appendTablePrefix(nil, table)
	end := prefixEnd(start)
	e.blobMu.Lock()
	defer e.blobMu.Unlock()
	e.blobs.reset()
	if err := e.db.DeleteRange(start, end, e.writeOpts); err != nil {
		return fmt.Errorf("deleting online table %s: %w", table, err)
	}
	return nil
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil // unreachable: p starts with rowSpace
}

// Flush writes the memtable to disk; tests and benchmarks use it to read
// from sstables (bloom filters, block cache) rather than the memtable.
func (e *Embedded) Flush() error {
	e.closeMu.RLock()
	defer e.closeMu.RUnlock()
	if e.closed {
		return ErrClosed
	}
	return e.db.Flush()
}

// Close implements [Store.Close]. It waits for operations in flight.
func (e *Embedded) Close() error {
	e.closeMu.Lock()
	defer e.closeMu.Unlock()
	if e.closed {
		return ErrClosed
	}
	e.closed = true
	if err := e.db.Close(); err != nil {
		return fmt.Errorf("closing online store: %w", err)
	}
	return nil
}

// pebbleLogger sends pebble's log lines to slog: informational ones at
// debug level (flushes and compactions are routine).
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug("pebble", "msg", fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error("pebble", "msg", fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error("pebble fatal", "msg", msg)
	panic("online: pebble: " + msg)
}
