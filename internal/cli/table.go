package cli

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"

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
			var rows server.Rows
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
		Use:   "describe NAME",
		Short: "Show a table's columns, row count, files and current snapshot",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := ident.Parse(args[0])
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if err := g.client().getJSON(cmd.Context(), "/api/v1/tables/"+n.String(), &raw); err != nil {
				return err
			}
			return writeIndented(env.Out, raw)
		},
	}
	list := &cobra.Command{
		Use:   "list CATALOG.SCHEMA",
		Short: "List the tables of a schema",
		Args:  cobra.ExactArgs(1),
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
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := ident.Parse(args[0])
			if err != nil {
				return err
			}
			var st table.OptimizeStats
			if err := g.client().do(cmd.Context(), http.MethodPost, "/api/v1/tables/"+n.String()+"/optimize", nil, "", &st); err != nil {
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
func printRows(w io.Writer, rows server.Rows, format string) error {
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
				rec[i] = cell(v)
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
			cells[i] = strings.ReplaceAll(cell(v), "\t", " ")
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "(%d rows)\n", len(rows.Rows))
	return nil
}

func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

type kv struct {
	k string
	v any
}

// orderedRow marshals as a JSON object with keys in column order.
type orderedRow []kv

func (r orderedRow) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, e := range r {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(e.k)
		v, err := json.Marshal(e.v)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}
