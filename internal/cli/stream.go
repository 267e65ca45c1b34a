package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/server"
)

func streamCmd(env Env, g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stream",
		Short: "Declare, inspect and delete streams (Kafka topics ingested into tables)",
	}
	var file string
	create := &cobra.Command{
		Use:   "create -f SPEC.yaml",
		Short: "Create a stream from a YAML or JSON spec and start ingesting it",
		Long: `Create a stream from a spec (YAML or JSON; docs/streams.md documents every
field). Ingestion starts at the current end of the selected partitions: every
record produced after this command returns is ingested, none before.`,
		Example: `  sluice stream create -f orders.yaml
  cat orders.json | sluice stream create -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return fmt.Errorf("-f SPEC is required (a YAML or JSON file, or - for standard input)")
			}
			doc, err := readInput(cmd, file)
			if err != nil {
				return fmt.Errorf("reading spec: %w", err)
			}
			var info server.StreamInfo
			if err := g.client().do(cmd.Context(), http.MethodPost, "/api/v1/streams", bytes.NewReader(doc), "application/yaml", &info); err != nil {
				return specError(file, err)
			}
			var offsets bytes.Buffer // the server indents; keep this one line
			_ = json.Compact(&offsets, info.StartOffsets)
			fmt.Fprintf(env.Out, "created stream %s ingesting into %s (starting offsets %s)\n", info.Name, info.Ingestion.Destination, offsets.String())
			return nil
		},
	}
	create.Flags().StringVarP(&file, "file", "f", "", "spec file (YAML or JSON), - for standard input")

	var output string
	get := &cobra.Command{
		Use:     "get NAME",
		Short:   "Show a stream: its spec and ingestion status",
		Example: "  sluice stream get main.demo.orders\n  sluice stream get main.demo.orders -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var raw json.RawMessage
			if _, err := g.callNamed(cmd, http.MethodGet, "/api/v1/streams", args[0], "", &raw); err != nil {
				return err
			}
			if output == "json" {
				return writeIndented(env.Out, raw)
			}
			var info server.StreamInfo
			if err := json.Unmarshal(raw, &info); err != nil {
				return err
			}
			printStream(env.Out, info)
			return nil
		},
	}
	get.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")

	var maxResults int
	var withSchemas bool
	var pageToken, listOutput string
	list := &cobra.Command{
		Use:     "list CATALOG.SCHEMA",
		Short:   "List the streams of a schema",
		Example: "  sluice stream list main.demo --max-results 50\n  sluice stream list main.demo --include-schemas -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, s, err := ident.ParseNamespace(args[0])
			if err != nil {
				return err
			}
			q := url.Values{"catalog_name": {c}, "schema_name": {s}, "max_results": {strconv.Itoa(maxResults)},
				"include_schemas": {strconv.FormatBool(withSchemas)}}
			if pageToken != "" {
				q.Set("page_token", pageToken)
			}
			var raw json.RawMessage
			if err := g.client().getJSON(cmd.Context(), "/api/v1/streams?"+q.Encode(), &raw); err != nil {
				return err
			}
			if listOutput == "json" {
				return writeIndented(env.Out, raw)
			}
			var l server.StreamList
			if err := json.Unmarshal(raw, &l); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(env.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tDESTINATION\tSTATE\tROWS\tQUARANTINED\tLAG\tOWNER")
			for _, st := range l.Streams {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\n", st.Name, st.Ingestion.Destination, st.Status.State,
					st.Status.RowsIngested, st.Status.RowsQuarantined, st.Status.Lag, st.Owner)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if l.NextPageToken != "" {
				fmt.Fprintf(env.Out, "more: --page-token %s\n", l.NextPageToken)
			}
			return nil
		},
	}
	list.Flags().IntVar(&maxResults, "max-results", 50, "at most this many streams (1-1000)")
	list.Flags().BoolVar(&withSchemas, "include-schemas", false, "include key and payload schemas (with -o json)")
	list.Flags().StringVar(&pageToken, "page-token", "", "continue a listing after this token")
	list.Flags().StringVarP(&listOutput, "output", "o", "text", "output format: text or json")

	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a stream, its ingestion and its ingestion table",
		Long: `Delete a stream. As in the seed, this also stops its ingestion and deletes its
ingestion table (and quarantine table): copy the table first if you need the
data. Needs MANAGE on the ingestion table.`,
		Example: "  sluice stream delete main.demo.orders",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := g.callNamed(cmd, http.MethodDelete, "/api/v1/streams", args[0], "", nil)
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Out, "deleted stream %s and its ingestion table\n", n)
			return nil
		},
	}
	cmd.AddCommand(create, get, list, del)
	return cmd
}

func specError(file string, err error) error {
	if ae, ok := err.(*APIError); ok {
		switch ae.Status {
		case http.StatusBadRequest:
			return fmt.Errorf("spec %s is invalid: %s", file, ae.Message)
		case http.StatusConflict:
			return fmt.Errorf("spec %s: %s", file, ae.Message)
		}
	}
	return err
}

func writeIndented(w io.Writer, raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "  "); err != nil {
		_, err = w.Write(raw)
		return err
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

func printStream(w io.Writer, s server.StreamInfo) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	k := s.Source.Kafka
	sub := ""
	switch {
	case k == nil:
	case k.Subscribe != "":
		sub = "subscribe " + k.Subscribe
	case k.SubscribePattern != "":
		sub = "subscribe_pattern " + k.SubscribePattern
	default:
		sub = "assign " + k.Assign
	}
	st := s.Status
	rows := [][2]string{
		{"name", s.Name},
		{"source", "kafka " + sub},
		{"bootstrap servers", s.Connection.BootstrapServers},
		{"destination", s.Ingestion.Destination},
		{"owner", s.Owner},
		{"created", s.CreatedAt.Format(time.RFC3339)},
		{"state", st.State},
		{"rows ingested", strconv.FormatInt(st.RowsIngested, 10)},
		{"rows quarantined", strconv.FormatInt(st.RowsQuarantined, 10)},
		{"lag", strconv.FormatInt(st.Lag, 10)},
		{"offsets", st.Offsets.String()},
	}
	if !st.LastCommitAt.IsZero() {
		rows = append(rows, [2]string{"last commit", st.LastCommitAt.Format(time.RFC3339)})
	}
	if st.LastError != "" {
		rows = append(rows, [2]string{"last error", st.LastError + " (" + st.LastErrorAt.Format(time.RFC3339) + ")"})
	}
	rows = append(rows, backfillRows(s)...)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
	}
	_ = tw.Flush()
}
