package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/server"
	"github.com/sluice-dev/sluice/internal/table"
)

func tableCmd(env Env, g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "table", Short: "Read, describe and optimize tables"}
	var limit int
	var format string
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Print rows of a table",
		Example: `  sluice table show main.demo.orders_ingestion --limit 20
  sluice table show main.demo.orders_ingestion --format csv > orders.csv`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := ident.Parse(args[0])
			if err != nil {
				return err
			}
			if format != "table" && format != "json" && format != "csv" {
				return fmt.Errorf("--format %q: use table, json or csv", format)
			}
			var rows rawRows
			q := url.Values{"limit": {strconv.Itoa(limit)}}
			if err := g.client().getJSON(cmd.Context(), "/api/v1/tables/"+n.String()+"/rows?"+q.Encode(), &rows); err != nil {
				return err
			}
			return printRows(env.Out, rows, format)
		},
	}
	show.Flags().IntVar(&limit, "limit", 20, "at most this many rows")
	show.Flags().StringVar(&format, "format", "table", "output format: table, json (one object per line) or csv")

	describe := &cobra.Command{
		Use:     "describe NAME",
		Short:   "Show a table's columns, row count, files and current snapshot",
		Example: "  sluice table describe main.demo.orders_ingestion",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var raw json.RawMessage
			if _, err := g.callNamed(cmd, http.MethodGet, "/api/v1/tables", args[0], "", &raw); err != nil {
				return err
			}
			return writeIndented(env.Out, raw)
		},
	}
	list := &cobra.Command{
		Use:     "list CATALOG.SCHEMA",
		Short:   "List the tables of a schema",
		Example: "  sluice table list main.demo",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, s, err := ident.ParseNamespace(args[0])
			if err != nil {
				return err
			}
			var out struct{ Tables []string }
			q := url.Values{"catalog_name": {c}, "schema_name": {s}}
			if err := g.client().getJSON(cmd.Context(), "/api/v1/tables?"+q.Encode(), &out); err != nil {
				return err
			}
			for _, t := range out.Tables {
				fmt.Fprintln(env.Out, t)
			}
			return nil
		},
	}
	optimize := &cobra.Command{
		Use:   "optimize NAME",
		Short: "Compact small data files and expire old snapshots",
		Long: `Rewrite a table's small data files into larger ones in one commit, expire
snapshots older than an hour (keeping the last five) and remove orphan files.
Safe while the table is being ingested: the recorded offsets carry over, and
a concurrent ingestion commit simply retries.`,
		Example: "  sluice table optimize main.demo.orders_ingestion",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var st table.OptimizeStats
			n, err := g.callNamed(cmd, http.MethodPost, "/api/v1/tables", args[0], "/optimize", &st)
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Out, "optimized %s: data files %d -> %d, snapshots expired %d, orphan files removed %d\n",
				n, st.FilesBefore, st.FilesAfter, st.SnapshotsExpired, st.OrphansRemoved)
			return nil
		},
	}
	cmd.AddCommand(show, describe, list, optimize)
	return cmd
}

// printRows renders rows as an aligned table, JSON lines or CSV. Nested
// values print as JSON.
func printRows(w io.Writer, rows rawRows, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		for _, r := range rows.Rows {
			obj := make(orderedRow, len(rows.Columns))
			for i, c := range rows.Columns {
				obj[i] = kv{c.Name, r[i]}
			}
			if err := enc.Encode(obj); err != nil {
				return err
			}
		}
		return nil
	case "csv":
		cw := csv.NewWriter(w)
		hdr := make([]string, len(rows.Columns))
		for i, c := range rows.Columns {
			hdr[i] = c.Name
		}
		if err := cw.Write(hdr); err != nil {
			return err
		}
		for _, r := range rows.Rows {
			rec := make([]string, len(r))
			for i, v := range r {
				rec[i] = cell(v, rows.Columns[i].Type)
			}
			if err := cw.Write(rec); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	hdr := make([]string, len(rows.Columns))
	for i, c := range rows.Columns {
		hdr[i] = c.Name
	}
	fmt.Fprintln(tw, strings.Join(hdr, "\t"))
	for _, r := range rows.Rows {
		cells := make([]string, len(r))
		for i, v := range r {
			cells[i] = strings.ReplaceAll(cell(v, rows.Columns[i].Type), "\t", " ")
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "(%d rows)\n", len(rows.Rows))
	return nil
}

// rawRows is server.Rows with every cell kept as its JSON text, so nested
// objects print with their fields in schema order and numbers as sent.
type rawRows struct {
	Columns []server.Column     `json:"columns"`
	Rows    [][]json.RawMessage `json:"rows"`
}

// cell renders one value for table and CSV output: strings bare, binary
// as text when it is UTF-8 (else base64), nested values as compact JSON.
func cell(v json.RawMessage, typ string) string {
	if len(v) == 0 || string(v) == "null" {
		return "NULL"
	}
	if v[0] == '"' {
		var s string
		if json.Unmarshal(v, &s) == nil {
			if typ == "binary" {
				if b, err := base64.StdEncoding.DecodeString(s); err == nil && utf8.Valid(b) {
					return string(b)
				}
			}
			return s
		}
	}
	var buf bytes.Buffer
	if json.Compact(&buf, v) == nil {
		return buf.String()
	}
	return string(v)
}

type kv struct {
	k string
	v json.RawMessage
}

// orderedRow marshals as a JSON object with keys in column order.
type orderedRow []kv

func (r orderedRow) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range r {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(e.k)
		b.Write(k)
		b.WriteByte(':')
		if len(e.v) == 0 {
			b.WriteString("null")
		} else if err := json.Compact(&b, e.v); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
