package stream

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseBackfill(t *testing.T) {
	cases := map[string]struct {
		ingestion string // lines added under ingestion:
		source    BackfillSource
		dedup     []string
		overlap   time.Duration
		deadline  time.Duration
	}{
		"table, defaults": {
			ingestion: "  backfill_source: main.demo.history\n",
			source:    BackfillSource{Table: "main.demo.history"},
			dedup:     DefaultDeduplicationColumns, overlap: time.Hour, deadline: 48 * time.Hour,
		},
		"parquet and settings": {
			ingestion: "  backfill_source: {parquet: \"/data/h/*.parquet\"}\n  deduplication_columns: [kafka_partition, kafka_offset]\n  backfill_overlap: 10m\n  backfill_deadline: 2d\n",
			source:    BackfillSource{Parquet: "/data/h/*.parquet"},
			dedup:     []string{"kafka_partition", "kafka_offset"}, overlap: 10 * time.Minute, deadline: 48 * time.Hour,
		},
		"table as a mapping, nested path": {
			ingestion: "  backfill_source: {table: main.demo.history}\n  deduplication_columns: [value.customer.id]\n",
			source:    BackfillSource{Table: "main.demo.history"},
			dedup:     []string{"value.customer.id"}, overlap: time.Hour, deadline: 48 * time.Hour,
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := Parse([]byte(good + c.ingestion))
			if err != nil {
				t.Fatal(err)
			}
			in := s.Ingestion
			if *in.BackfillSource != c.source || strings.Join(in.DedupColumns(), ",") != strings.Join(c.dedup, ",") ||
				in.BackfillOverlap.D() != c.overlap || in.BackfillDeadline.D() != c.deadline {
				t.Fatalf("ingestion = %+v (source %+v)", in, in.BackfillSource)
			}
			// The API's round trip keeps it.
			b, _ := json.Marshal(s)
			s2, err := Parse(b)
			if err != nil {
				t.Fatalf("%v\n%s", err, b)
			}
			if b2, _ := json.Marshal(s2); string(b2) != string(b) {
				t.Fatalf("round trip differs:\n%s\n%s", b, b2)
			}
		})
	}
	// Without a backfill source there are no backfill defaults in the spec.
	s, err := Parse([]byte(good))
	if err != nil || s.Ingestion.BackfillOverlap != 0 || s.Ingestion.BackfillSource != nil {
		t.Fatalf("%+v, %v", s.Ingestion, err)
	}
}

func TestParseBackfillErrors(t *testing.T) {
	cases := map[string]struct{ ingestion, field, want string }{
		"dedup without source": {"  deduplication_columns: [value.x]\n", "ingestion.deduplication_columns", "give ingestion.backfill_source too"},
		"deadline without":     {"  backfill_deadline: 1h\n", "ingestion.backfill_deadline", "backfill_source"},
		"both kinds":           {"  backfill_source: {table: a.b.c, parquet: /x}\n", "ingestion.backfill_source", "not both"},
		"bad table name":       {"  backfill_source: history\n", "ingestion.backfill_source", "three parts"},
		"itself":               {"  backfill_source: main.demo.orders_ingestion\n", "ingestion.backfill_source", "itself"},
		"relative parquet":     {"  backfill_source: {parquet: data/*.parquet}\n", "ingestion.backfill_source.parquet", "absolute"},
		"bad glob":             {"  backfill_source: {parquet: \"/data/[\"}\n", "ingestion.backfill_source.parquet", "glob"},
		"unknown root":         {"  backfill_source: a.b.c\n  deduplication_columns: [payload.id]\n", "ingestion.deduplication_columns[0]", "must start with"},
		"empty segment":        {"  backfill_source: a.b.c\n  deduplication_columns: [value..id]\n", "ingestion.deduplication_columns[0]", "dot path"},
		"nested metadata":      {"  backfill_source: a.b.c\n  deduplication_columns: [kafka_offset.x]\n", "ingestion.deduplication_columns[0]", "only key and value"},
		"twice":                {"  backfill_source: a.b.c\n  deduplication_columns: [key, key]\n", "ingestion.deduplication_columns[1]", "twice"},
		"negative overlap":     {"  backfill_source: a.b.c\n  backfill_overlap: -1h\n", "ingestion.backfill_overlap", "between"},
		"unknown source field": {"  backfill_source: {delta: a.b.c}\n", "", "field delta not found in backfill_source"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(good + c.ingestion))
			var fe *FieldError
			if err == nil || !strings.Contains(err.Error(), c.want) || c.field != "" && (!errors.As(err, &fe) || fe.Field != c.field) {
				t.Fatalf("err = %v; want a FieldError on %q mentioning %q", err, c.field, c.want)
			}
		})
	}
}
