package table

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	ictable "github.com/apache/iceberg-go/table"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver used by OpenSQLite

	"github.com/sluice-dev/sluice/internal/ident"
)

// catalogName is the catalog_name column value of every row this package
// writes to the Iceberg SQL catalog tables. sluice's own three-part catalog
// name is the first namespace level, not this.
const catalogName = "sluice"

// Options configures [Open]. The zero value is invalid: DB and Warehouse are
// required.
type Options struct {
	// DB is the metadata database handle. The Iceberg SQL catalog tables
	// (iceberg_tables, iceberg_namespace_properties) live in it and are
	// created if missing. The caller opens it (see [OpenSQLite]), owns it and
	// closes it after the Store is no longer used; the Store never closes it.
	DB *sql.DB
	// Dialect is the SQL dialect of DB: "sqlite" (the default when empty) or
	// "postgres".
	Dialect string
	// Warehouse is the local directory under which each table lives, at
	// Warehouse/<catalog>/<schema>/<name>, holding its data/ and metadata/
	// directories. Required. A relative path is made absolute at Open.
	Warehouse string
}

// EnsureDefaults fills in the documented defaults of unset fields.
func (o *Options) EnsureDefaults() {
	if o.Dialect == "" {
		o.Dialect = string(sqlcat.SQLite)
	}
}

// Validate reports whether o is usable after [Options.EnsureDefaults].
func (o *Options) Validate() error {
	if o.DB == nil {
		return errors.New("table: Options.DB is required")
	}
	if o.Warehouse == "" {
		return errors.New("table: Options.Warehouse is required")
	}
	switch o.Dialect {
	case string(sqlcat.SQLite), string(sqlcat.Postgres):
	default:
		return fmt.Errorf("table: Options.Dialect %q: want sqlite or postgres", o.Dialect)
	}
	return nil
}

// Store is sluice's set of Iceberg tables: an Iceberg SQL catalog in the
// metadata database plus a local warehouse directory.
//
// A Store is safe for concurrent use by multiple goroutines, and several
// Stores (in one or several processes) may share one database and
// warehouse: commits are serialised by the catalog, and a stale writer gets
// [ErrConflict]. The [Table] handles it returns are not goroutine-safe.
type Store struct {
	db        *sql.DB
	cat       *sqlcat.Catalog
	mc        *metaCatalog // the catalog of every handle: cat with parsed metadata cached
	warehouse string
	logger    *slog.Logger

	optimizing chan struct{} // holds a token while Optimize runs: one at a time

	orphanMu      sync.Mutex
	orphanChecked map[string]time.Time // by table: last orphan removal (OptimizeOptions.OrphanEvery)
}

// Open returns a Store over opts.DB, creating the Iceberg catalog tables if
// they are missing. ctx bounds only the setup. A nil logger discards logs.
func Open(ctx context.Context, opts Options, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	wh, err := filepath.Abs(opts.Warehouse)
	if err != nil {
		return nil, fmt.Errorf("table: resolving warehouse %q: %w", opts.Warehouse, err)
	}
	if err := os.MkdirAll(wh, 0o755); err != nil {
		return nil, fmt.Errorf("table: creating warehouse: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// NewCatalog creates the catalog tables (init_catalog_tables defaults to
	// true) with its own background context; it does not take ours.
	cat, err := sqlcat.NewCatalog(catalogName, opts.DB, sqlcat.SupportedDialect(opts.Dialect), iceberg.Properties{})
	if err != nil {
		return nil, fmt.Errorf("table: opening iceberg sql catalog: %w", err)
	}
	if _, err := opts.DB.ExecContext(ctx, readersDDL); err != nil {
		return nil, fmt.Errorf("table: creating the readers table: %w", err)
	}
	return &Store{db: opts.DB, cat: cat, mc: newMetaCatalog(cat, opts.DB, opts.Dialect), warehouse: wh, logger: logger,
		optimizing: make(chan struct{}, 1)}, nil
}

// Close releases the catalog's resources. It does not close Options.DB.
func (s *Store) Close() error { return s.cat.Close() }

// Warehouse returns the absolute warehouse directory.
func (s *Store) Warehouse() string { return s.warehouse }

// Location returns the directory where table name lives (or would live).
func (s *Store) Location(name ident.Name) string {
	return filepath.Join(s.warehouse, name.Catalog, name.Schema, name.Object)
}

func identifier(name ident.Name) ictable.Identifier {
	return ictable.Identifier{name.Catalog, name.Schema, name.Object}
}

func checkName(name ident.Name) error {
	if _, err := ident.Parse(name.String()); err != nil {
		return fmt.Errorf("table: %w", err)
	}
	return nil
}

// CreateOptions configures [Store.Create]. The zero value is useful.
type CreateOptions struct {
	// Properties are Iceberg table properties. They override this package's
	// write defaults (see [DefaultProperties]) except
	// commit.retry.num-retries, which is always 0 so that a stale writer
	// gets [ErrConflict] instead of being silently rebased.
	Properties map[string]string
	// DictionaryColumns names the columns to dictionary-encode in Parquet:
	// a top-level column (all leaves of a struct, list or map column) or a
	// dotted path to a nested field ("value.product", "tags.element",
	// "attrs.key"). Mark only low-cardinality columns: dictionaries are off
	// for every other column, which makes writing several times faster.
	DictionaryColumns []string
	// NoStatsColumns names the columns (as DictionaryColumns does) whose
	// leaves get Iceberg metrics mode "none"
	// (write.metadata.metrics.column.NAME): no bounds or counts in the
	// manifests, and no Parquet column statistics, which
	// [Table.WriteBatches] then does not compute. Mark high-cardinality
	// strings that no query prunes by: their min/max statistics are a
	// sizable part of the cost of writing them.
	NoStatsColumns []string
}

// Create creates table name with Arrow schema sc (plain Arrow: field IDs are
// assigned fresh; nullable fields become optional Iceberg fields, timestamps
// with a time zone become timestamptz). It creates the namespace
// catalog.schema if needed. It returns [ErrExists] if the table exists.
// The new table has no snapshot.
func (s *Store) Create(ctx context.Context, name ident.Name, sc *arrow.Schema, o CreateOptions) (*Table, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	isc, err := ictable.ArrowSchemaToIcebergWithFreshIDs(sc, false)
	if err != nil {
		return nil, fmt.Errorf("table: converting schema of %s: %w", name, err)
	}
	props, err := createProperties(isc, o)
	if err != nil {
		return nil, fmt.Errorf("table: creating %s: %w", name, err)
	}
	ns := ictable.Identifier{name.Catalog, name.Schema}
	if err := s.cat.CreateNamespace(ctx, ns, nil); err != nil && !errors.Is(err, catalog.ErrNamespaceAlreadyExists) {
		return nil, fmt.Errorf("table: creating namespace %s: %w", name.Namespace(), err)
	}
	tbl, err := s.cat.CreateTable(ctx, identifier(name), isc,
		catalog.WithLocation(s.Location(name)),
		catalog.WithProperties(props))
	if err != nil {
		if errors.Is(err, catalog.ErrTableAlreadyExists) {
			return nil, fmt.Errorf("%w: %s", ErrExists, name)
		}
		return nil, fmt.Errorf("table: creating %s: %w", name, err)
	}
	s.logger.Debug("table created", "table", name.String(), "location", tbl.Location())
	return newTable(s, name, s.mc.adopt(identifier(name), tbl))
}

// Changed returns a channel that is closed when this Store next commits to
// table name (an append, overwrite, merge, compaction or expiry, from any
// handle). Take it before reading the table: a commit after that read is
// then never missed. Commits by other processes sharing the catalog do not
// close it; poll for those.
func (s *Store) Changed(name ident.Name) <-chan struct{} {
	return s.mc.changed(identifier(name))
}

// Load returns a handle on the current state of table name, or
// [ErrNotFound].
func (s *Store) Load(ctx context.Context, name ident.Name) (*Table, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	tbl, err := s.mc.LoadTable(ctx, identifier(name))
	if err != nil {
		return nil, loadError(name, err)
	}
	return newTable(s, name, tbl)
}

func loadError(name ident.Name, err error) error {
	if errors.Is(err, catalog.ErrNoSuchTable) || errors.Is(err, catalog.ErrNoSuchNamespace) {
		return fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	return fmt.Errorf("table: loading %s: %w", name, err)
}

// Drop removes table name from the catalog, then deletes its data and
// metadata files and its directory. It returns [ErrNotFound] if the table
// does not exist. Handles on the table fail afterwards. If deleting files
// fails after the catalog entry is gone, the error says so; the table is
// dropped either way.
func (s *Store) Drop(ctx context.Context, name ident.Name) error {
	if err := checkName(name); err != nil {
		return err
	}
	id := identifier(name)
	tbl, err := s.cat.LoadTable(ctx, id)
	if err != nil {
		return loadError(name, err)
	}
	if err := s.cat.DropTable(ctx, id); err != nil {
		if errors.Is(err, catalog.ErrNoSuchTable) {
			return fmt.Errorf("%w: %s", ErrNotFound, name)
		}
		return fmt.Errorf("table: dropping %s: %w", name, err)
	}
	s.mc.forget(id)
	if err := tbl.PurgeFiles(ctx); err != nil {
		return fmt.Errorf("table: dropped %s but purging its files: %w", name, err)
	}
	// PurgeFiles leaves the (now empty) directories behind.
	if loc := localPath(tbl.Location()); strings.HasPrefix(loc, s.warehouse+string(filepath.Separator)) {
		if err := os.RemoveAll(loc); err != nil {
			return fmt.Errorf("table: dropped %s but removing %s: %w", name, loc, err)
		}
	}
	s.logger.Debug("table dropped", "table", name.String())
	return nil
}

// List returns the tables of namespace catalog.schema, sorted by name. A
// namespace that does not exist has no tables.
func (s *Store) List(ctx context.Context, catalogName, schema string) ([]ident.Name, error) {
	var names []ident.Name
	for id, err := range s.cat.ListTables(ctx, ictable.Identifier{catalogName, schema}) {
		if err != nil {
			if errors.Is(err, catalog.ErrNoSuchNamespace) {
				return nil, nil
			}
			return nil, fmt.Errorf("table: listing %s.%s: %w", catalogName, schema, err)
		}
		if len(id) != 3 {
			continue
		}
		names = append(names, ident.Name{Catalog: id[0], Schema: id[1], Object: id[2]})
	}
	slices.SortFunc(names, func(a, b ident.Name) int { return strings.Compare(a.Object, b.Object) })
	return names, nil
}

// localPath turns a location (a plain path or a file:// URI) into a local
// path.
func localPath(loc string) string {
	if rest, ok := strings.CutPrefix(loc, "file://"); ok {
		return filepath.FromSlash(rest)
	}
	return loc
}

// OpenSQLite opens (creating if needed) the SQLite database file at path with
// the pure-Go "sqlite" driver and the DSN recommended in the package
// documentation (busy timeout 10 s, WAL, immediate write transactions), and
// checks that it is usable. The caller owns the returned handle and closes
// it.
func OpenSQLite(path string) (*sql.DB, error) {
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("table: sqlite path %q: must not contain ? or #", path)
	}
	db, err := sql.Open("sqlite", sqliteDSN(path))
	if err != nil {
		return nil, fmt.Errorf("table: opening sqlite %s: %w", path, err)
	}
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("table: opening sqlite %s: %w", path, err)
	}
	return db, nil
}

func sqliteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_txlock=immediate"
}
