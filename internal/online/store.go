package online

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

var (
	// ErrClosed is returned by every method of a Store after Close.
	ErrClosed = errors.New("online: store closed")
	// ErrInvalid marks a caller's mistake that retrying cannot fix: an empty
	// table name or entity key, an empty or duplicated feature name, Names
	// and Values of different lengths, an event time outside the int64
	// nanosecond range. It is wrapped with the details.
	ErrInvalid = errors.New("online: invalid argument")
	// ErrCorrupt marks stored bytes that do not decode: a damaged data
	// directory, another program's keys under the store's prefix, or a
	// format this version does not know. It is wrapped with the details.
	ErrCorrupt = errors.New("online: corrupt data")
)

// Table names a feature table's online rows and how long they stay valid.
type Table struct {
	// Name is the feature table's name, e.g. "main.features.user_activity".
	// Tables with different names never share rows.
	Name string
	// TTL is how long a row stays valid after its event time: a row whose
	// age at the read time exceeds TTL reads as OUTSIDE_MAX_AGE. Zero means
	// rows never expire.
	TTL time.Duration
}

// Store is an online feature store: the latest row of each entity of each
// feature table, for serving. [Embedded] and [Redis] implement it, and one
// conformance suite tests both. All methods are safe for concurrent use.
type Store interface {
	// Write upserts rows into table t. A row replaces the stored row of its
	// entity only if its (EventTime, Version) is not less than the stored
	// row's, so writing older rows, or writing a batch twice, never loses a
	// newer row; with equal (EventTime, Version) the last write wins. This
	// holds under concurrent writers, in this process and (for Redis)
	// across processes. Rows of one batch with the same key are applied in
	// order under the same rule.
	//
	// Write is not atomic across rows: on error some rows may have been
	// written, and the caller retries the whole batch, which the rule makes
	// harmless. Invalid rows fail the whole batch with [ErrInvalid] before
	// anything is written. Write does not retain rows or their slices.
	// Cancelling ctx abandons waiting for a remote store; rows already sent
	// may still be applied.
	Write(ctx context.Context, t Table, rows []Row) error

	// Get reads the given features of each key of table t. It returns one
	// Result per key, in order, with Values and Statuses in the order of
	// features. now is the read time against which t.TTL is checked (the
	// zero Time means time.Now()). A missing entity or feature is not an
	// error: its status is NotFound. The caller owns the returned slices.
	// Get reads each key independently (not one snapshot of all keys).
	Get(ctx context.Context, t Table, keys []Key, features []string, now time.Time) ([]Result, error)

	// DeleteTable removes every row of the named table. Rows written
	// concurrently with it may survive; callers stop the table's writers
	// first.
	DeleteTable(ctx context.Context, table string) error

	// Close releases the store's resources. Calls made after it (or racing
	// with it) return ErrClosed.
	Close() error

	// BlobStore keeps read-modify-write blobs beside the rows (the time
	// tiles of windowed features).
	BlobStore
}

var (
	_ Store = (*Embedded)(nil)
	_ Store = (*Redis)(nil)
)

const (
	minEventNanos = math.MinInt64 + 1 // UnixNano of times far in the past saturates here or below
	maxEventNanos = math.MaxInt64
)

var (
	minEventTime = time.Unix(0, minEventNanos)
	maxEventTime = time.Unix(0, maxEventNanos)
)

// validateRows checks what Write's contract forbids.
func validateRows(t Table, rows []Row) error {
	if t.Name == "" {
		return fmt.Errorf("%w: empty table name", ErrInvalid)
	}
	for i := range rows {
		r := &rows[i]
		if len(r.Key) == 0 {
			return fmt.Errorf("%w: row %d: empty entity key", ErrInvalid, i)
		}
		for _, v := range r.Key {
			if v.kind >= numKinds {
				return fmt.Errorf("%w: row %d: key value of %s", ErrInvalid, i, v.kind)
			}
		}
		if len(r.Names) != len(r.Values) {
			return fmt.Errorf("%w: row %d: %d names for %d values", ErrInvalid, i, len(r.Names), len(r.Values))
		}
		if r.EventTime.Before(minEventTime) || r.EventTime.After(maxEventTime) {
			return fmt.Errorf("%w: row %d: event time %v outside the int64 nanosecond range", ErrInvalid, i, r.EventTime)
		}
		// Rows of a batch usually share Names: check a slice once.
		if i > 0 && sameSlice(r.Names, rows[i-1].Names) {
			continue
		}
		if err := validateNames(r.Names); err != nil {
			return fmt.Errorf("%w: row %d: %w", ErrInvalid, i, err)
		}
	}
	for i := range rows {
		for _, v := range rows[i].Values {
			if v.kind >= numKinds {
				return fmt.Errorf("%w: row %d: value of %s", ErrInvalid, i, v.kind)
			}
		}
	}
	return nil
}

func sameSlice(a, b []string) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

func validateNames(names []string) error {
	if len(names) > 32 {
		seen := make(map[string]struct{}, len(names))
		for _, n := range names {
			if n == "" {
				return errors.New("empty feature name")
			}
			if _, dup := seen[n]; dup {
				return fmt.Errorf("feature %q twice", n)
			}
			seen[n] = struct{}{}
		}
		return nil
	}
	for i, n := range names {
		if n == "" {
			return errors.New("empty feature name")
		}
		for _, m := range names[:i] {
			if m == n {
				return fmt.Errorf("feature %q twice", n)
			}
		}
	}
	return nil
}

// lookup matches stored feature names against the requested ones.
type lookup struct {
	features []string
	index    map[string]int // name -> first position; nil for short lists
	dups     []int          // position -> first position of the same name, or -1; nil without duplicates
}

func newLookup(features []string) lookup {
	l := lookup{features: features}
	if len(features) > 16 {
		l.index = make(map[string]int, len(features))
	}
	for i, f := range features {
		first := -1
		if l.index != nil {
			if j, ok := l.index[f]; ok {
				first = j
			} else {
				l.index[f] = i
			}
		} else {
			for j, g := range features[:i] {
				if g == f {
					first = j
					break
				}
			}
		}
		if first >= 0 {
			if l.dups == nil {
				l.dups = make([]int, len(features))
				for k := range l.dups {
					l.dups[k] = -1
				}
			}
			l.dups[i] = first
		}
	}
	return l
}

// find returns the first position of name among the requested features, or
// -1.
func (l *lookup) find(name []byte) int {
	if l.index != nil {
		if i, ok := l.index[string(name)]; ok {
			return i
		}
		return -1
	}
	for i, f := range l.features {
		if f == string(name) {
			return i
		}
	}
	return -1
}

// results allocates n Results for len(features) features each, all
// NotFound, sharing two backing arrays.
func (l *lookup) results(n int) []Result {
	res := make([]Result, n)
	nf := len(l.features)
	values := make([]Value, n*nf)
	statuses := make([]Status, n*nf)
	for i := range statuses {
		statuses[i] = NotFound
	}
	for i := range res {
		res[i].Values = values[i*nf : (i+1)*nf : (i+1)*nf]
		res[i].Statuses = statuses[i*nf : (i+1)*nf : (i+1)*nf]
	}
	return res
}

// setFound records a found row's event time and version in r and reports
// whether its features are expired at now.
func setFound(r *Result, t Table, eventNanos int64, version uint64, now time.Time) (expired bool) {
	r.Found = true
	r.EventTime = time.Unix(0, eventNanos).UTC()
	r.Version = version
	return t.TTL > 0 && now.Sub(r.EventTime) > t.TTL
}

// set records the value of the feature at position i.
func (l *lookup) set(r *Result, i int, v Value, expired bool) {
	switch {
	case expired:
		r.Statuses[i] = OutsideMaxAge
	case v.kind == KindNull:
		r.Statuses[i] = NullValue
	default:
		r.Values[i] = v
		r.Statuses[i] = Present
	}
}

// finish copies the first occurrence of each duplicated feature name.
func (l *lookup) finish(r *Result) {
	for i, first := range l.dups {
		if first >= 0 {
			r.Values[i], r.Statuses[i] = r.Values[first], r.Statuses[first]
		}
	}
}
