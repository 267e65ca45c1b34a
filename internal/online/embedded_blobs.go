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
	// What this call writes (stored form: expiry, content), so that a
	// later update of the same key sees it; it joins the cache once the
	// batch is committed.
	wrote := map[string][]byte{}
	var key []byte
	for _, u := range ups {
		key = appendBlobKey(key[:0], table, u.Key)
		stored, ok := wrote[string(key)]
		if !ok {
			if stored, ok = e.blobs.get(key); !ok {
				var err error
				if stored, err = e.readBlob(key); err != nil {
					return fmt.Errorf("reading %s blob: %w", table, err)
				}
				e.blobs.put(string(key), stored)
			}
		}
		old, oldExp, err := splitBlob(stored, now)
		if err != nil {
			return fmt.Errorf("reading %s blob: %w", table, err)
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
		val = append(val, nv...)
		if err := b.Set(key, val, nil); err != nil {
			return err
		}
		wrote[string(key)] = val
		if exp != 0 {
			if err := b.Set(appendExpiryKey(nil, table, exp, u.Key), nil, nil); err != nil {
				return err
			}
		}
	}
	if err := b.Commit(e.writeOpts); err != nil {
		e.blobs.reset() // the batch may or may not have landed
		return fmt.Errorf("writing %s blobs: %w", table, err)
	}
	for k, v := range wrote {
		e.blobs.put(k, v)
	}
	return nil
}

// blobCache keeps the stored values (expiry, content) of the blobs that
// UpdateBlobs read or wrote, so that the next fold of an entity's tiles
// does not read them back from pebble: a windowed table's fold reads and
// rewrites a few blobs per entity several times a second. It holds at
// most blobCacheBytes and is emptied when full. An absent blob is cached
// as nil. Guarded by Embedded.blobMu; it is only ever a copy of what was
// committed, so dropping it is always safe.
type blobCache struct {
	m     map[string][]byte
	bytes int
}

const blobCacheBytes = 64 << 20

func (c *blobCache) get(key []byte) ([]byte, bool) {
	v, ok := c.m[string(key)]
	return v, ok
}

func (c *blobCache) put(key string, v []byte) {
	if c.m == nil || c.bytes > blobCacheBytes {
		c.reset()
	}
	if old, ok := c.m[key]; ok {
		c.bytes -= len(key) + len(old)
	}
	c.m[key] = v
	c.bytes += len(key) + len(v)
}

func (c *blobCache) delete(key []byte) {
	if old, ok := c.m[string(key)]; ok {
		c.bytes -= len(key) + len(old)
		delete(c.m, string(key))
	}
}

func (c *blobCache) reset() { c.m, c.bytes = map[string][]byte{}, 0 }

// readBlob returns the stored value of key, nil when absent.
func (e *Embedded) readBlob(key []byte) ([]byte, error) {
	val, closer, err := e.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	if len(val) < 8 {
		return nil, fmt.Errorf("%w: blob of %d bytes", ErrCorrupt, len(val))
	}
	return bytes.Clone(val), nil
}

// splitBlob splits a stored value into its content (nil when absent or
// expired at now) and its expiry (0 for none or absent). The content
// aliases stored.
func splitBlob(stored []byte, now time.Time) ([]byte, int64, error) {
	if stored == nil {
		return nil, 0, nil
	}
	if len(stored) < 8 {
		return nil, 0, fmt.Errorf("%w: blob of %d bytes", ErrCorrupt, len(stored))
	}
	exp := int64(binary.BigEndian.Uint64(stored))
	if exp != 0 && exp <= now.UnixMilli() {
		return nil, exp, nil
	}
	return stored[8:], exp, nil
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
				e.blobs.delete(bk)
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
		stored, err := e.readBlob(key)
		var v []byte
		if err == nil {
			v, _, err = splitBlob(stored, now)
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s blob: %w", table, err)
		}
		out[i] = v
	}
	return out, nil
}
