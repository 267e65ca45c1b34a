package online

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// The embedded store keeps a blob as expiry(8, big-endian Unix ms, 0 for
// never) followed by its content, and, for a blob with an expiry, an index
// entry under the table's expiry space so that expired blobs are deleted
// by a range scan rather than found by reading everything.

func appendBlobKey(dst []byte, table string, key []byte) []byte {
	dst = appendTablePrefix(dst, table)
	dst = append(dst, blobMark)
	return append(dst, key...)
}

func appendExpiryKey(dst []byte, table string, exp int64, key []byte) []byte {
	dst = appendTablePrefix(dst, table)
	dst = append(dst, expiryMark)
	dst = binary.BigEndian.AppendUint64(dst, uint64(exp))
	return append(dst, key...)
}

// UpdateBlobs implements [BlobStore.UpdateBlobs]. Blob updates of this
// process are serialised by one mutex (the directory lock keeps other
// processes out); expired blobs of the table are deleted first.
func (e *Embedded) UpdateBlobs(ctx context.Context, table string, ups []BlobUpdate) error {
	if err := validateBlobUpdates(table, ups); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	e.closeMu.RLock()
	defer e.closeMu.RUnlock()
	if e.closed {
		return ErrClosed
	}
	e.blobMu.Lock()
	defer e.blobMu.Unlock()
	b := e.db.NewBatch()
	defer b.Close()
	now := time.Now()
	if err := e.sweepExpired(b, table, now); err != nil {
		return err
	}
	// What this call wrote, so that a later update of the same key sees
	// it (a plain batch cannot be read, and an indexed one costs a
	// skiplist insert per write).
	type written struct {
		val []byte
		exp int64
	}
	wrote := map[string]written{}
	var key []byte
	for _, u := range ups {
		key = appendBlobKey(key[:0], table, u.Key)
		var old []byte
		var oldExp int64
		if w, ok := wrote[string(key)]; ok {
			old, oldExp = w.val, w.exp
			if oldExp != 0 && oldExp <= now.UnixMilli() {
				old = nil
			}
		} else {
			var err error
			if old, oldExp, err = e.getBlob(e.db, key, now); err != nil {
				return fmt.Errorf("reading %s blob: %w", table, err)
			}
		}
		nv, err := u.Apply(old)
		if err != nil {
			return err
		}
		exp := expiryMillis(u.ExpireAt)
		if old != nil && bytes.Equal(nv, old) && exp == oldExp {
			continue
		}
		if oldExp != 0 && oldExp != exp {
			if err := b.Delete(appendExpiryKey(nil, table, oldExp, u.Key), nil); err != nil {
				return err
			}
		}
		val := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(nv)), uint64(exp))
		if err := b.Set(key, append(val, nv...), nil); err != nil {
			return err
		}
		wrote[string(key)] = written{nv, exp}
		if exp != 0 {
			if err := b.Set(appendExpiryKey(nil, table, exp, u.Key), nil, nil); err != nil {
				return err
			}
		}
	}
	if err := b.Commit(e.writeOpts); err != nil {
		return fmt.Errorf("writing %s blobs: %w", table, err)
	}
	return nil
}

// getBlob reads one blob through r; it returns nil for an absent or
// expired blob, with the stored expiry (0 for none or absent).
func (e *Embedded) getBlob(r pebble.Reader, key []byte, now time.Time) ([]byte, int64, error) {
	val, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	defer closer.Close()
	if len(val) < 8 {
		return nil, 0, fmt.Errorf("%w: blob of %d bytes", ErrCorrupt, len(val))
	}
	exp := int64(binary.BigEndian.Uint64(val))
	if exp != 0 && exp <= now.UnixMilli() {
		return nil, exp, nil
	}
	return bytes.Clone(val[8:]), exp, nil
}

// sweepExpired deletes, in b, the blobs of table whose expiry has passed.
func (e *Embedded) sweepExpired(b *pebble.Batch, table string, now time.Time) error {
	lo := appendTablePrefix(nil, table)
	lo = append(lo, expiryMark)
	n := len(lo)
	hi := binary.BigEndian.AppendUint64(bytes.Clone(lo), uint64(now.UnixMilli())+1)
	it, err := e.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	defer it.Close()
	swept := 0
	for it.First(); it.Valid() && swept < 4096; it.Next() {
		k := it.Key()
		if len(k) < n+8 {
			continue
		}
		exp := int64(binary.BigEndian.Uint64(k[n:]))
		bk := appendBlobKey(nil, table, k[n+8:])
		// Delete the blob only if it still carries this expiry (a later
		// update may have extended it and left this index entry behind).
		val, closer, err := e.db.Get(bk)
		if err == nil {
			if len(val) >= 8 && int64(binary.BigEndian.Uint64(val)) == exp {
				if err := b.Delete(bk, nil); err != nil {
					closer.Close()
					return err
				}
			}
			closer.Close()
		} else if !errors.Is(err, pebble.ErrNotFound) {
			return err
		}
		if err := b.Delete(bytes.Clone(k), nil); err != nil {
			return err
		}
		swept++
	}
	return it.Error()
}

// GetBlobs implements [BlobStore.GetBlobs].
func (e *Embedded) GetBlobs(ctx context.Context, table string, keys [][]byte, now time.Time) ([][]byte, error) {
	if table == "" {
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
	out := make([][]byte, len(keys))
	var key []byte
	for i, k := range keys {
		if i&63 == 63 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		key = appendBlobKey(key[:0], table, k)
		v, _, err := e.getBlob(e.db, key, now)
		if err != nil {
			return nil, fmt.Errorf("reading %s blob: %w", table, err)
		}
		out[i] = v
	}
	return out, nil
}
