package table

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/apache/iceberg-go"
	ictable "github.com/apache/iceberg-go/table"
)

// Parquet write properties that iceberg-go v0.7.0 honours (see its
// table/internal/parquet_files.go). The per-column keys are suffixed with the
// Parquet column path: "col" for a top-level primitive, "col.child" in a
// struct, "col.list.element" in a list, "col.key_value.key" and
// "col.key_value.value" in a map.
const (
	propDictDefault       = "parquet.enable.dictionary" // default true in iceberg-go
	propDictColumnPrefix  = "write.parquet.dict-encoding-enabled.column."
	propCompression       = ictable.ParquetCompressionKey      // default zstd
	propCompressionLevel  = ictable.ParquetCompressionLevelKey // default -1 (codec default)
	propFormatVersion     = ictable.PropertyFormatVersion
	propCommitRetries     = ictable.CommitNumRetriesKey
	defaultTargetFileSize = 128 << 20
)

// DefaultProperties returns the table properties that [Store.Create] sets
// unless CreateOptions.Properties overrides them:
//
//   - format-version 2;
//   - Parquet compression snappy, and dictionary encoding off
//     (parquet.enable.dictionary=false) except on
//     CreateOptions.DictionaryColumns: iceberg-go's default (zstd, a
//     dictionary on every column) writes about 2× slower here;
//   - write.target-file-size-bytes 128 MiB, the [OptimizeOptions] default;
//   - old metadata.json files deleted after commit, keeping 10;
//   - commit.retry.num-retries 0 (not overridable; see [ErrConflict]);
//   - commit.manifest-merge.enabled, merging once 16 manifests accumulate.
func DefaultProperties() map[string]string {
	return map[string]string{
		propFormatVersion:                           "2",
		propCompression:                             "snappy",
		propDictDefault:                             "false",
		ictable.WriteTargetFileSizeBytesKey:         fmt.Sprint(defaultTargetFileSize),
		ictable.MetadataDeleteAfterCommitEnabledKey: "true",
		ictable.MetadataPreviousVersionsMaxKey:      "10",
		propCommitRetries:                           "0",
		// Without merging, every append adds a manifest forever: planning
		// a scan or a compaction reads them all, and a stream committing
		// every few seconds makes thousands a day.
		ictable.ManifestMergeEnabledKey:  "true",
		ictable.ManifestMinMergeCountKey: "16",
	}
}

func createProperties(sc *iceberg.Schema, o CreateOptions) (iceberg.Properties, error) {
	props := iceberg.Properties(DefaultProperties())
	for _, col := range o.DictionaryColumns {
		paths, err := dictionaryPaths(sc, col)
		if err != nil {
			return nil, err
		}
		for _, path := range paths {
			props[propDictColumnPrefix+path] = "true"
		}
	}
	for _, col := range o.NoStatsColumns {
		n := 0
		for _, l := range leaves(sc) {
			if l.name == col || strings.HasPrefix(l.name, col+".") {
				props[ictable.MetricsModeColumnConfPrefix+"."+l.name] = metricsNone
				n++
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("no-stats column %q: no such column", col)
		}
	}
	maps.Copy(props, o.Properties)
	props[propCommitRetries] = "0"
	return props, nil
}

// dictionaryPaths resolves col, a top-level column name or a dotted path to
// a nested field ("value.product"; "tags.element" in a list; "m.key" and
// "m.value" in a map), to the Parquet paths of its leaves.
func dictionaryPaths(sc *iceberg.Schema, col string) ([]string, error) {
	parts := strings.Split(col, ".")
	root := sc.AsStruct()
	var (
		typ  iceberg.Type = &root
		path []string
	)
	for _, p := range parts {
		switch t := typ.(type) {
		case *iceberg.StructType:
			i := slices.IndexFunc(t.FieldList, func(f iceberg.NestedField) bool { return f.Name == p })
			if i < 0 {
				return nil, fmt.Errorf("dictionary column %q: no field %q", col, p)
			}
			typ, path = t.FieldList[i].Type, append(path, p)
		case *iceberg.ListType:
			if p != "element" {
				return nil, fmt.Errorf("dictionary column %q: a list has only element, not %q", col, p)
			}
			typ, path = t.Element, append(path, "list", "element")
		case *iceberg.MapType:
			switch p {
			case "key":
				typ = t.KeyType
			case "value":
				typ = t.ValueType
			default:
				return nil, fmt.Errorf("dictionary column %q: a map has key and value, not %q", col, p)
			}
			path = append(path, "key_value", p)
		default:
			return nil, fmt.Errorf("dictionary column %q: %q is not nested", col, p)
		}
	}
	return parquetLeafPaths(strings.Join(path, "."), typ), nil
}

// parquetLeafPaths returns the dotted Parquet column paths of the leaves of
// a column named name of type t, as pqarrow writes them.
func parquetLeafPaths(name string, t iceberg.Type) []string {
	switch t := t.(type) {
	case *iceberg.StructType:
		var out []string
		for _, f := range t.FieldList {
			out = append(out, parquetLeafPaths(name+"."+f.Name, f.Type)...)
		}
		return out
	case *iceberg.ListType:
		return parquetLeafPaths(name+".list.element", t.Element)
	case *iceberg.MapType:
		return append(parquetLeafPaths(name+".key_value.key", t.KeyType),
			parquetLeafPaths(name+".key_value.value", t.ValueType)...)
	default:
		return []string{name}
	}
}
