package table

import (
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	icebergio "github.com/apache/iceberg-go/io"
	ictable "github.com/apache/iceberg-go/table"
)

// metaCatalog is the catalog behind every handle a [Store] makes (their
// ictable.CatalogIO: Refresh, commits and commit retries go through it). It
// keeps, per table, the parsed metadata of the table's current metadata
// file, keyed by that file's location.
//
// Iceberg metadata lists every retained snapshot, and iceberg-go's SQL
// catalog reads and parses the whole file on every load and, again, inside
// every commit. A stream committing 20 times a second keeps hundreds of
// snapshots, and parsing them was a quarter of a busy node's CPU. Here a
// load costs one indexed SELECT of the current location when the metadata
// has not moved since this process last read or wrote it, and a commit
// writes the new metadata from the cached base without reading it back.
//
// The cache cannot go stale: the location in the catalog row names an
// immutable file, every load compares it, and a commit is a compare-and-swap
// on it, so a writer in another process is seen as a new location (loaded
// and parsed as before) or a failed swap ([ictable.ErrCommitFailed], which
// iceberg-go's commit retries after a fresh load).
type metaCatalog struct {
	sql      *sqlcat.Catalog // everything but the hot paths, and the errors of missing tables
	db       *sql.DB
	postgres bool

	mu      sync.Mutex
	meta    map[string]cachedMeta    // by cacheKey
	waiters map[string]chan struct{} // by cacheKey: closed at the table's next commit

	parsed atomic.Int64 // metadata files read and parsed (for tests)
}

type cachedMeta struct {
	loc string
	md  ictable.Metadata
}

func newMetaCatalog(cat *sqlcat.Catalog, db *sql.DB, dialect string) *metaCatalog {
	return &metaCatalog{sql: cat, db: db, postgres: dialect == string(sqlcat.Postgres), meta: map[string]cachedMeta{}, waiters: map[string]chan struct{}{}}
}

// rowKey returns the iceberg_tables key of id, a [catalog, schema, table]
// identifier: sluice's names have no dots in their parts, so the namespace
// key is the parts joined by dots, as the SQL catalog stores it.
func rowKey(id ictable.Identifier) (ns, name string, ok bool) {
	if len(id) != 3 {
		return "", "", false
	}
	for _, p := range id {
		if p == "" || strings.Contains(p, ".") {
			return "", "", false
		}
	}
	return id[0] + "." + id[1], id[2], true
}

func cacheKey(ns, name string) string { return ns + "\x00" + name }

// bind rewrites ? placeholders for the dialect.
func (c *metaCatalog) bind(q string) string {
	if !c.postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// location returns the current metadata location of table ns.name, or ""
// if the catalog has no such row.
func (c *metaCatalog) location(ctx context.Context, ns, name string) (string, error) {
	var loc sql.NullString
	err := c.db.QueryRowContext(ctx, c.bind(
		`SELECT metadata_location FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ? AND table_name = ?`),
		catalogName, ns, name).Scan(&loc)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !loc.Valid) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the metadata location of %s.%s: %w", ns, name, err)
	}
	return loc.String, nil
}

// handle makes a table handle on metadata md at loc whose catalog is c.
func (c *metaCatalog) handle(id ictable.Identifier, md ictable.Metadata, loc string) *ictable.Table {
	return ictable.New(id, md, loc, icebergio.LoadFSFunc(iceberg.Properties{}, loc), c)
}

// adopt caches tbl's metadata and returns a handle on it whose catalog is c.
func (c *metaCatalog) adopt(id ictable.Identifier, tbl *ictable.Table) *ictable.Table {
	if ns, name, ok := rowKey(id); ok {
		c.put(cacheKey(ns, name), tbl.MetadataLocation(), tbl.Metadata())
	}
	return c.handle(id, tbl.Metadata(), tbl.MetadataLocation())
}

func (c *metaCatalog) put(key, loc string, md ictable.Metadata) {
	c.mu.Lock()
	c.meta[key] = cachedMeta{loc: loc, md: md}
	c.mu.Unlock()
}

func (c *metaCatalog) get(key string) cachedMeta {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.meta[key]
}

// forget drops the cached metadata of id (after a drop).
func (c *metaCatalog) forget(id ictable.Identifier) {
	if ns, name, ok := rowKey(id); ok {
		c.mu.Lock()
		delete(c.meta, cacheKey(ns, name))
		c.mu.Unlock()
	}
}

// LoadTable implements ictable.CatalogIO.
func (c *metaCatalog) LoadTable(ctx context.Context, id ictable.Identifier) (*ictable.Table, error) {
	ns, name, ok := rowKey(id)
	if !ok {
		return c.sql.LoadTable(ctx, id)
	}
	loc, err := c.location(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	if loc != "" {
		if m := c.get(cacheKey(ns, name)); m.loc == loc {
			return c.handle(id, m.md, loc), nil
		}
	}
	// Not cached, moved, or missing (the SQL catalog reports which error).
	tbl, err := c.sql.LoadTable(ctx, id)
	if err != nil {
		return nil, err
	}
	c.parsed.Add(1)
	return c.adopt(id, tbl), nil
}

// CommitTable implements ictable.CatalogIO as the SQL catalog does (check
// the requirements against the current metadata, apply the updates, write
// the next metadata file, swap the row's location if it is still the
// base's), starting from the cached metadata.
func (c *metaCatalog) CommitTable(ctx context.Context, id ictable.Identifier, reqs []ictable.Requirement, updates []ictable.Update) (ictable.Metadata, string, error) {
	ns, name, ok := rowKey(id)
	if !ok {
		return c.sql.CommitTable(ctx, id, reqs, updates)
	}
	current, err := c.LoadTable(ctx, id)
	if errors.Is(err, catalog.ErrNoSuchTable) {
		return c.sql.CommitTable(ctx, id, reqs, updates) // creates it
	}
	if err != nil {
		return nil, "", err
	}
	base, baseLoc := current.Metadata(), current.MetadataLocation()
	for _, r := range reqs {
		if err := r.Validate(base); err != nil {
			return nil, "", err
		}
	}
	updated, err := ictable.UpdateTableMetadata(base, updates, baseLoc)
	if err != nil {
		return nil, "", err
	}
	if updated.Equals(base) {
		return base, baseLoc, nil
	}
	version, err := metadataVersion(baseLoc)
	if err != nil {
		return nil, "", err
	}
	provider, err := ictable.LoadLocationProvider(updated.Location(), updated.Properties())
	if err != nil {
		return nil, "", err
	}
	loc, err := provider.NewTableMetadataFileLocation(version + 1)
	if err != nil {
		return nil, "", err
	}
	fs, err := icebergio.LoadFS(ctx, iceberg.Properties{}, loc)
	if err != nil {
		return nil, "", err
	}
	wfs, ok := fs.(icebergio.WriteFileIO)
	if !ok {
		return nil, "", fmt.Errorf("writing metadata of %s.%s: the file system at %s is read-only", ns, name, loc)
	}
	// Keep (and write) a deep copy of the builder's result: the new
	// snapshot's summary shares memory with the transaction that made it,
	// which holds its base metadata, so a table committed to from cached
	// metadata, commit after commit, kept every version alive (a copy of
	// the snapshot list per commit: quadratic; TestMetadataCacheMemory).
	// A second build from it clones everything and shares nothing.
	rb, err := ictable.MetadataBuilderFromBase(updated, "")
	if err != nil {
		return nil, "", err
	}
	copied, err := rb.Build()
	if err != nil {
		return nil, "", fmt.Errorf("copying metadata of %s.%s: %w", ns, name, err)
	}
	raw, err := marshalMetadata(copied)
	if err != nil {
		return nil, "", fmt.Errorf("encoding metadata of %s.%s: %w", ns, name, err)
	}
	if err := writeMetadata(wfs, loc, copied.Properties(), raw); err != nil {
		return nil, "", fmt.Errorf("writing metadata of %s.%s: %w", ns, name, err)
	}
	// The swap is one short statement, run to its end whatever becomes
	// of ctx: a cancellation that interrupts it leaves no doubt about
	// whether it landed (an UPDATE that landed but reported an error,
	// followed by removing its file, left the table pointing at nothing).
	swapCtx := context.WithoutCancel(ctx)
	res, err := c.db.ExecContext(swapCtx, c.bind(
		`UPDATE iceberg_tables SET metadata_location = ?, previous_metadata_location = ?
		 WHERE catalog_name = ? AND table_namespace = ? AND table_name = ? AND metadata_location = ?`),
		loc, baseLoc, catalogName, ns, name, baseLoc)
	var n int64
	if err == nil {
		n, err = res.RowsAffected()
	}
	if err != nil {
		// Did it land after all? Only a row naming another file makes
		// ours an orphan; when that cannot be told, the file stays (it
		// is the table's, or orphan removal's to delete).
		if cur, lerr := c.location(swapCtx, ns, name); lerr == nil && cur == loc {
			err, n = nil, 1
		} else if lerr == nil {
			_ = wfs.Remove(loc)
		}
	}
	if err != nil {
		return nil, "", fmt.Errorf("updating the metadata location of %s.%s: %w", ns, name, err)
	}
	if n == 0 {
		_ = wfs.Remove(loc) // the row names another file: nobody refers to ours
		return nil, "", fmt.Errorf("%w: table %s.%s metadata-location moved underneath us", ictable.ErrCommitFailed, ns, name)
	}
	key := cacheKey(ns, name)
	c.mu.Lock()
	c.meta[key] = cachedMeta{loc: loc, md: copied}
	if ch := c.waiters[key]; ch != nil {
		close(ch)
		delete(c.waiters, key)
	}
	c.mu.Unlock()
	return copied, loc, nil
}

// changed returns a channel closed at the next commit to id through c.
func (c *metaCatalog) changed(id ictable.Identifier) <-chan struct{} {
	ns, name, ok := rowKey(id)
	if !ok {
		return nil
	}
	key := cacheKey(ns, name)
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := c.waiters[key]
	if ch == nil {
		ch = make(chan struct{})
		c.waiters[key] = ch
	}
	return ch
}

// metadataVersion parses the version of a metadata file name
// (00012-<uuid>.metadata.json, or the legacy v12.metadata.json).
func metadataVersion(loc string) (int, error) {
	file := path.Base(loc)
	digits := strings.TrimPrefix(file, "v")
	if i := strings.IndexAny(digits, "-."); i > 0 {
		if v, err := strconv.Atoi(digits[:i]); err == nil && v >= 0 {
			return v, nil
		}
	}
	return 0, fmt.Errorf("invalid metadata location %q: no version in the file name", loc)
}

// writeMetadata writes the metadata JSON raw to loc, compressed as the
// table's write.metadata.compression-codec property says.
func writeMetadata(fs icebergio.WriteFileIO, loc string, props iceberg.Properties, raw []byte) (err error) {
	codec := props.Get(ictable.MetadataCompressionKey, ictable.MetadataCompressionDefault)
	if codec != ictable.MetadataCompressionCodecNone && codec != ictable.MetadataCompressionCodecGzip {
		return fmt.Errorf("unsupported metadata compression codec %q (use none or gzip)", codec)
	}
	out, err := fs.Create(loc)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	var w io.Writer = out
	if codec == ictable.MetadataCompressionCodecGzip {
		gz := gzip.NewWriter(out)
		defer func() {
			if cerr := gz.Close(); err == nil {
				err = cerr
			}
		}()
		w = gz
	}
	_, err = w.Write(raw)
	return err
}

// marshalMetadata encodes md as its metadata file holds it. iceberg-go's
// metadata types marshal themselves, into compact JSON already: calling
// their MarshalJSON directly spares json.Marshal's second pass over the
// whole document (validating and compacting it again), which is most of
// the cost of a commit of a table holding hundreds of snapshots.
func marshalMetadata(md ictable.Metadata) ([]byte, error) {
	if m, ok := md.(json.Marshaler); ok {
		return m.MarshalJSON()
	}
	return json.Marshal(md)
}
