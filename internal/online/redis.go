package online

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/redis/rueidis"
)

// RedisOptions configures [OpenRedis].
type RedisOptions struct {
	// URL locates the server, as rueidis.ParseURL reads it:
	// redis://[user:password@]host:port[/db], rediss:// for TLS,
	// unix:///path. Required.
	URL string
	// Prefix namespaces the store's keys, so that several stores (or other
	// programs) share one Redis. Default "sluice:online:".
	Prefix string
	// ClientCache, when positive, serves Get from rueidis's client-side
	// cache: Redis tracks the keys this client read and invalidates them
	// when they change, and an entry is kept at most ClientCache. Default
	// 0: every Get asks the server.
	ClientCache time.Duration
	// ExpireGrace: for a table with a TTL, each row gets a Redis expiry at
	// its EventTime + TTL + ExpireGrace, so that Redis frees rows no read
	// can use. Until then an expired row reads as OUTSIDE_MAX_AGE (as in
	// the embedded store); after it, as NOT_FOUND. Default 1h; negative:
	// rows never get a Redis expiry.
	ExpireGrace time.Duration
}

// EnsureDefaults fills in the defaults of unset fields.
func (o *RedisOptions) EnsureDefaults() {
	if o.Prefix == "" {
		o.Prefix = "sluice:online:"
	}
	if o.ExpireGrace == 0 {
		o.ExpireGrace = time.Hour
	}
}

// Validate reports a missing or malformed option.
func (o *RedisOptions) Validate() error {
	if o.URL == "" {
		return fmt.Errorf("%w: no Redis URL", ErrInvalid)
	}
	if o.ClientCache < 0 {
		return fmt.Errorf("%w: negative client cache duration", ErrInvalid)
	}
	return nil
}

// Redis is the online store in Redis, for several sluice instances sharing
// one store. Each entity's row is a hash at
//
//	Prefix uvarint(len(table)) table AppendKey(key)
//
// whose field "" holds the 16 order bytes (see the package documentation)
// and whose other fields hold the feature values (kind byte, payload). A
// Lua script compares the order bytes and replaces the hash, so the
// newer-wins rule is atomic across all clients. Its methods are safe for
// concurrent use.
type Redis struct {
	client rueidis.Client
	logger *slog.Logger
	opts   RedisOptions

	closeMu sync.RWMutex
	closed  bool
}

// writeScript applies one row: KEYS[1] the row's hash, ARGV[1] the order
// bytes, ARGV[2] the expiry (Unix milliseconds, "0" for none), then name,
// value pairs. It returns 1 when the row was written and 0 when the stored
// row is newer. A stored order field that is too short loses.
const writeScript = `
local cur = redis.call('HGET', KEYS[1], '')
if cur then
  local new = ARGV[1]
  for i = 1, 16 do
    local a, b = string.byte(cur, i), string.byte(new, i)
    if a == nil then break end
    if a ~= b then
      if a > b then return 0 end
      break
    end
  end
  redis.call('DEL', KEYS[1])
end
redis.call('HSET', KEYS[1], '', ARGV[1])
for i = 3, #ARGV, 256 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 255, #ARGV)))
end
if ARGV[2] ~= '0' then
  redis.call('PEXPIREAT', KEYS[1], ARGV[2])
end
return 1
`

var writeScriptSHA = func() string {
	h := sha1.Sum([]byte(writeScript))
	return hex.EncodeToString(h[:])
}()

// OpenRedis connects to the Redis at opts.URL. ctx bounds connecting only.
// A nil logger discards. The caller must Close the store.
func OpenRedis(ctx context.Context, logger *slog.Logger, opts RedisOptions) (*Redis, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	co, err := rueidis.ParseURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("%w: Redis URL: %w", ErrInvalid, err)
	}
	co.DisableCache = opts.ClientCache == 0
	if dl, ok := ctx.Deadline(); ok && co.Dialer.Timeout == 0 {
		co.Dialer.Timeout = time.Until(dl)
	}
	client, err := rueidis.NewClient(co)
	if err != nil {
		return nil, fmt.Errorf("connecting to Redis: %w", err)
	}
	if err := client.Do(ctx, client.B().Ping().Build()).Error(); err != nil {
		client.Close()
		return nil, fmt.Errorf("connecting to Redis: %w", err)
	}
	return &Redis{client: client, logger: logger, opts: opts}, nil
}

func (r *Redis) rowKey(dst []byte, table string, k Key) []byte {
	dst = append(dst, r.opts.Prefix...)
	dst = appendUvarintLen(dst, len(table))
	dst = append(dst, table...)
	return AppendKey(dst, k)
}

// Write implements [Store.Write]: one pipelined round trip of EVALSHA
// calls (and a second of EVALs if the server had not cached the script).
func (r *Redis) Write(ctx context.Context, t Table, rows []Row) error {
	if err := validateRows(t, rows); err != nil {
		return err
	}
	if len(rows) == 0 {
		return nil
	}
	r.closeMu.RLock()
	defer r.closeMu.RUnlock()
	if r.closed {
		return ErrClosed
	}
	keys := make([]string, len(rows))
	args := make([][]string, len(rows))
	var buf []byte
	for i := range rows {
		row := &rows[i]
		buf = r.rowKey(buf[:0], t.Name, row.Key)
		keys[i] = string(buf)
		a := make([]string, 2, 2+2*len(row.Names))
		a[0] = string(encodeOrder(buf[:0], row.EventTime.UnixNano(), row.Version))
		a[1] = "0"
		if t.TTL > 0 && r.opts.ExpireGrace >= 0 {
			a[1] = strconv.FormatInt(row.EventTime.Add(t.TTL+r.opts.ExpireGrace).UnixMilli(), 10)
		}
		for j, name := range row.Names {
			a = append(a, name, string(appendValue(buf[:0], row.Values[j])))
		}
		args[i] = a
	}
	cmds := make(rueidis.Commands, len(rows))
	for i := range rows {
		cmds[i] = r.client.B().Evalsha().Sha1(writeScriptSHA).Numkeys(1).Key(keys[i]).Arg(args[i]...).Build()
	}
	var retry []int
	for i, res := range r.client.DoMulti(ctx, cmds...) {
		if err := res.Error(); err != nil {
			if rerr, ok := rueidis.IsRedisErr(err); ok && rerr.IsNoScript() {
				retry = append(retry, i)
				continue
			}
			return fmt.Errorf("writing %s rows: %w", t.Name, err)
		}
	}
	if len(retry) == 0 {
		return nil
	}
	// The server lost its script cache (a restart, SCRIPT FLUSH): EVAL
	// loads it again. The rows retried come after every row applied in the
	// first round trip, so each key still sees its rows in batch order.
	cmds = cmds[:0]
	for _, i := range retry {
		cmds = append(cmds, r.client.B().Eval().Script(writeScript).Numkeys(1).Key(keys[i]).Arg(args[i]...).Build())
	}
	for _, res := range r.client.DoMulti(ctx, cmds...) {
		if err := res.Error(); err != nil {
			return fmt.Errorf("writing %s rows: %w", t.Name, err)
		}
	}
	return nil
}

// Get implements [Store.Get]: one pipelined round trip of HMGETs, served
// from the client-side cache when [RedisOptions.ClientCache] is set.
func (r *Redis) Get(ctx context.Context, t Table, keys []Key, features []string, now time.Time) ([]Result, error) {
	if t.Name == "" {
		return nil, fmt.Errorf("%w: empty table name", ErrInvalid)
	}
	if now.IsZero() {
		now = time.Now()
	}
	r.closeMu.RLock()
	defer r.closeMu.RUnlock()
	if r.closed {
		return nil, ErrClosed
	}
	l := lookup{features: features}
	res := l.results(len(keys))
	if len(keys) == 0 {
		return res, nil
	}
	fields := make([]string, 1+len(features))
	copy(fields[1:], features)
	var buf []byte
	var resps []rueidis.RedisResult
	if r.opts.ClientCache > 0 {
		cmds := make([]rueidis.CacheableTTL, len(keys))
		for i, k := range keys {
			buf = r.rowKey(buf[:0], t.Name, k)
			cmds[i] = rueidis.CT(r.client.B().Hmget().Key(string(buf)).Field(fields...).Cache(), r.opts.ClientCache)
		}
		resps = r.client.DoMultiCache(ctx, cmds...)
	} else {
		cmds := make(rueidis.Commands, len(keys))
		for i, k := range keys {
			buf = r.rowKey(buf[:0], t.Name, k)
			cmds[i] = r.client.B().Hmget().Key(string(buf)).Field(fields...).Build()
		}
		resps = r.client.DoMulti(ctx, cmds...)
	}
	for i, resp := range resps {
		arr, err := resp.ToArray()
		if err != nil {
			return nil, fmt.Errorf("reading %s rows: %w", t.Name, err)
		}
		if len(arr) != len(fields) {
			return nil, fmt.Errorf("reading %s rows: HMGET returned %d values for %d fields", t.Name, len(arr), len(fields))
		}
		if arr[0].IsNil() {
			continue
		}
		order, err := arr[0].ToString()
		if err != nil || len(order) != orderLen {
			return nil, fmt.Errorf("reading %s row %v: %w: bad order field", t.Name, keys[i], ErrCorrupt)
		}
		ts, version := decodeOrder(stringBytes(order))
		expired := setFound(&res[i], t, ts, version, now)
		for j := range features {
			m := &arr[1+j]
			if m.IsNil() {
				continue
			}
			s, err := m.ToString()
			if err != nil {
				return nil, fmt.Errorf("reading %s row %v feature %q: %w", t.Name, keys[i], features[j], err)
			}
			v, rest, err := decodeValue(stringBytes(s))
			if err == nil && len(rest) != 0 {
				err = fmt.Errorf("%w: %d bytes after value", ErrCorrupt, len(rest))
			}
			if err != nil {
				return nil, fmt.Errorf("reading %s row %v feature %q: %w", t.Name, keys[i], features[j], err)
			}
			l.set(&res[i], j, v, expired)
		}
	}
	return res, nil
}

// stringBytes views s as bytes for decoding; the bytes must not be
// modified or retained.
func stringBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// DeleteTable implements [Store.DeleteTable]: it SCANs each node for the
// table's keys and UNLINKs them (Redis frees memory in the background).
func (r *Redis) DeleteTable(ctx context.Context, table string) error {
	if table == "" {
		return fmt.Errorf("%w: empty table name", ErrInvalid)
	}
	r.closeMu.RLock()
	defer r.closeMu.RUnlock()
	if r.closed {
		return ErrClosed
	}
	prefix := string(r.rowKey(nil, table, nil))
	prefix = prefix[:len(prefix)-1] // drop AppendKey's column count
	pattern := globEscape(prefix) + "*"
	for _, node := range r.client.Nodes() {
		var cursor uint64
		for {
			e, err := node.Do(ctx, node.B().Scan().Cursor(cursor).Match(pattern).Count(1000).Build()).AsScanEntry()
			if err != nil {
				return fmt.Errorf("deleting online table %s: scanning: %w", table, err)
			}
			if len(e.Elements) > 0 {
				cmds := make(rueidis.Commands, len(e.Elements))
				for i, k := range e.Elements {
					cmds[i] = node.B().Unlink().Key(k).Build()
				}
				for _, res := range node.DoMulti(ctx, cmds...) {
					if err := res.Error(); err != nil {
						return fmt.Errorf("deleting online table %s: %w", table, err)
					}
				}
			}
			if e.Cursor == 0 {
				break
			}
			cursor = e.Cursor
		}
	}
	return nil
}

// globEscape escapes the glob metacharacters of SCAN MATCH.
func globEscape(s string) string {
	out := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			out = append(out, '\\')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// Close implements [Store.Close]. It waits for operations in flight.
func (r *Redis) Close() error {
	r.closeMu.Lock()
	defer r.closeMu.Unlock()
	if r.closed {
		return ErrClosed
	}
	r.closed = true
	r.client.Close()
	return nil
}
