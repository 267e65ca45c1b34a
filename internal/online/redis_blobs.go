package online

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"
)

// casScript replaces a blob if it still holds what the caller read:
// KEYS[1] the blob, ARGV[1] "1" if the caller saw a blob and "0" if it saw
// none, ARGV[2] what it saw, ARGV[3] the new content, ARGV[4] the expiry
// (Unix ms, "0" for none). It returns 1 when written, 0 on a conflict.
const casScript = `
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '0' then
  if cur then return 0 end
elseif cur ~= ARGV[2] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3])
if ARGV[4] ~= '0' then
  redis.call('PEXPIREAT', KEYS[1], ARGV[4])
end
return 1
`

var casScriptSHA = func() string {
	h := sha1.Sum([]byte(casScript))
	return hex.EncodeToString(h[:])
}()

func (r *Redis) blobKey(dst []byte, table string, key []byte) []byte {
	dst = append(dst, r.opts.Prefix...)
	dst = appendUvarintLen(dst, len(table))
	dst = append(dst, table...)
	dst = append(dst, blobMark)
	return append(dst, key...)
}

// GetBlobs implements [BlobStore.GetBlobs] with one MGET (Redis drops
// expired keys itself).
func (r *Redis) GetBlobs(ctx context.Context, table string, keys [][]byte, now time.Time) ([][]byte, error) {
	if table == "" {
		return nil, fmt.Errorf("%w: empty table name", ErrInvalid)
	}
	r.closeMu.RLock()
	defer r.closeMu.RUnlock()
	if r.closed {
		return nil, ErrClosed
	}
	return r.mget(ctx, table, keys)
}

func (r *Redis) mget(ctx context.Context, table string, keys [][]byte) ([][]byte, error) {
	out := make([][]byte, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	// One GET per key, pipelined: MGET would need every key in one slot
	// of a cluster.
	cmds := make(rueidis.Commands, len(keys))
	var buf []byte
	for i, k := range keys {
		buf = r.blobKey(buf[:0], table, k)
		cmds[i] = r.client.B().Get().Key(string(buf)).Build()
	}
	for i, res := range r.client.DoMulti(ctx, cmds...) {
		b, err := res.AsBytes()
		if rueidis.IsRedisNil(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s blobs: %w", table, err)
		}
		out[i] = b
	}
	return out, nil
}

// UpdateBlobs implements [BlobStore.UpdateBlobs]: it reads the blobs,
// applies the updates in Go and writes each back with a compare-and-set
// script; blobs that another writer changed in between are read and
// applied again.
func (r *Redis) UpdateBlobs(ctx context.Context, table string, ups []BlobUpdate) error {
	if err := validateBlobUpdates(table, ups); err != nil {
		return err
	}
	r.closeMu.RLock()
	defer r.closeMu.RUnlock()
	if r.closed {
		return ErrClosed
	}
	// Updates of the same key within one call are applied in order: the
	// later ones see the earlier ones' result, as in the embedded store.
	pending := ups
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt == 100 {
			return fmt.Errorf("writing %s blobs: %d still conflicting after %d attempts", table, len(pending), attempt)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		keys := make([][]byte, 0, len(pending))
		first := map[string]int{} // key -> index in keys
		for _, u := range pending {
			if _, ok := first[string(u.Key)]; !ok {
				first[string(u.Key)] = len(keys)
				keys = append(keys, u.Key)
			}
		}
		olds, err := r.mget(ctx, table, keys)
		if err != nil {
			return err
		}
		cur := make([][]byte, len(olds))
		copy(cur, olds)
		exps := make([]string, len(keys))
		for _, u := range pending {
			i := first[string(u.Key)]
			nv, err := u.Apply(cur[i])
			if err != nil {
				return err
			}
			if nv == nil {
				nv = []byte{}
			}
			cur[i] = nv
			exps[i] = strconv.FormatInt(expiryMillis(u.ExpireAt), 10)
		}
		var idx []int
		cmds := make(rueidis.Commands, 0, len(keys))
		var buf []byte
		for i := range keys {
			if olds[i] != nil && bytes.Equal(olds[i], cur[i]) && exps[i] == "0" {
				continue
			}
			seen := "1"
			if olds[i] == nil {
				seen = "0"
			}
			buf = r.blobKey(buf[:0], table, keys[i])
			cmds = append(cmds, r.client.B().Evalsha().Sha1(casScriptSHA).Numkeys(1).Key(string(buf)).
				Arg(seen, string(olds[i]), string(cur[i]), exps[i]).Build())
			idx = append(idx, i)
		}
		conflicted := map[string]bool{}
		for j, res := range r.client.DoMulti(ctx, cmds...) {
			n, err := res.AsInt64()
			if err != nil {
				if rerr, ok := rueidis.IsRedisErr(err); ok && rerr.IsNoScript() {
					if err := r.loadScript(ctx); err != nil {
						return err
					}
					conflicted[string(keys[idx[j]])] = true
					continue
				}
				return fmt.Errorf("writing %s blobs: %w", table, err)
			}
			if n == 0 {
				conflicted[string(keys[idx[j]])] = true
			}
		}
		next := pending[:0:0]
		for _, u := range pending {
			if conflicted[string(u.Key)] {
				next = append(next, u)
			}
		}
		pending = next
	}
	return nil
}

func (r *Redis) loadScript(ctx context.Context) error {
	if err := r.client.Do(ctx, r.client.B().ScriptLoad().Script(casScript).Build()).Error(); err != nil {
		return fmt.Errorf("loading the blob script into Redis: %w", err)
	}
	return nil
}
