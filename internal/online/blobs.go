package online

import (
	"context"
	"fmt"
	"time"
)

// Blobs are opaque byte strings that a caller updates by
// read-modify-write: the windowed features of internal/feature/window keep
// their time tiles in them. A blob belongs to a table (DeleteTable removes
// it with the table's rows) and lives under a key of the caller's making;
// it may carry an expiry, after which reads see it as absent and the store
// eventually frees it.
//
// Stored keys: the table's row prefix, then blobMark, then the caller's
// key. Row keys continue the table prefix with AppendKey's column count, a
// uvarint below 0x80 for any real key, so the two never meet.
const (
	blobMark   = 0xff // table prefix, blobMark, key -> expiry(8) blob
	expiryMark = 0xfe // table prefix, expiryMark, expiry(8), key -> "" (embedded only)
)

// BlobUpdate replaces one blob.
type BlobUpdate struct {
	// Key names the blob within its table; it must not be empty.
	Key []byte
	// Apply returns the blob's new content from its current one (nil when
	// absent or expired). It may be called more than once when a
	// concurrent writer changed the blob first, and must depend on old
	// alone; it must not modify old (a store may keep it). Returning old
	// unchanged (the same length and bytes) writes nothing.
	Apply func(old []byte) ([]byte, error)
	// ExpireAt is when the blob stops being readable; zero means never.
	ExpireAt time.Time
}

// BlobStore is the read-modify-write part of a Store. Every Store
// implements it.
type BlobStore interface {
	// UpdateBlobs applies each update atomically with respect to other
	// updates of the same blob, in this process and (for Redis) across
	// processes. It is not atomic across blobs: on error some updates may
	// have been applied, and callers make their Apply idempotent.
	UpdateBlobs(ctx context.Context, table string, ups []BlobUpdate) error
	// GetBlobs returns the content of each key's blob, nil where a blob is
	// absent or expired at now (zero now: time.Now()). The caller owns the
	// returned slices.
	GetBlobs(ctx context.Context, table string, keys [][]byte, now time.Time) ([][]byte, error)
}

var (
	_ BlobStore = (*Embedded)(nil)
	_ BlobStore = (*Redis)(nil)
)

func validateBlobUpdates(table string, ups []BlobUpdate) error {
	if table == "" {
		return fmt.Errorf("%w: empty table name", ErrInvalid)
	}
	for i, u := range ups {
		if len(u.Key) == 0 {
			return fmt.Errorf("%w: blob update %d: empty key", ErrInvalid, i)
		}
		if u.Apply == nil {
			return fmt.Errorf("%w: blob update %d: no Apply", ErrInvalid, i)
		}
	}
	return nil
}

// expiryMillis is the stored form of an expiry: Unix milliseconds, 0 for
// never.
func expiryMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return max(t.UnixMilli(), 1)
}

// AppendValue appends the stored encoding of v (kind byte, payload) to dst;
// DecodeValue reads it back. Callers that keep values inside blobs use
// them.
func AppendValue(dst []byte, v Value) []byte { return appendValue(dst, v) }

// DecodeValue decodes one value from the front of b and returns the rest.
func DecodeValue(b []byte) (Value, []byte, error) { return decodeValue(b) }
