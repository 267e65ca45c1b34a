package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/pipeline"
	"github.com/sluice-dev/sluice/internal/server"
	"github.com/sluice-dev/sluice/internal/sql"
)

func pipelineCmd(env Env, g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pipeline",
		Short: "Validate, run and watch SQL pipelines (streaming tables, materialized views)",
		Long: `A pipeline is a SQL file of CREATE STREAMING TABLE, CREATE MATERIALIZED VIEW
and CREATE TEMPORARY VIEW statements (the Delta Live Tables dialect; see
docs/sql.md). sluice orders the datasets by what they read and keeps them up
to date: streaming tables process each new source row once, materialized
views are recomputed when their sources change.`,
	}
	cmd.AddCommand(pipelineValidateCmd(env, g), pipelineRunCmd(env, g), pipelineStatusCmd(env, g),
		pipelineEventsCmd(env, g), pipelineListCmd(env, g), pipelineUpdateCmd(env, g),
		pipelineNamedCmd(env, g, "stop", "Stop a pipeline's running update (it is not resumed on restart)", http.MethodPost, "/stop"),
		pipelineNamedCmd(env, g, "delete", "Stop a pipeline and forget it (its tables stay)", http.MethodDelete, ""))
	return cmd
}

// readSQL reads a pipeline file, or standard input for "-".
func readSQL(cmd *cobra.Command, file string) (string, error) {
	b, err := readInput(cmd, file)
	if err != nil {
		return "", fmt.Errorf("reading the pipeline: %w", err)
	}
	return string(b), nil
}

// readInput reads the file a -f flag names, or standard input for "-".
func readInput(cmd *cobra.Command, file string) ([]byte, error) {
	if file == "-" {
		return io.ReadAll(cmd.InOrStdin())
	}
	return os.ReadFile(file)
}

// defaultPipelineName names a pipeline after its file, in the namespace
// of its first three-part dataset name: orders.sql defining
// main.demo.orders_silver is main.demo.orders_pipeline.
func defaultPipelineName(file, src string) (string, error) {
	ns := "main.default"
	if script, err := sql.Parse(src); err == nil {
		for _, st := range script.Stmts {
			if c, ok := st.(*sql.CreateStmt); ok && len(c.Name.Parts) == 3 {
				ns = c.Name.Parts[0].Name + "." + c.Name.Parts[1].Name
				break
			}
		}
	}
	stem := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	if file == "-" || stem == "" {
		return "", errors.New("--name is required when the pipeline comes from standard input")
	}
	stem = strings.Map(func(r rune) rune {
		if r == '-' || r == '.' || r == ' ' {
			return '_'
		}
		return r
	}, stem)
	if !strings.HasSuffix(stem, "_pipeline") {
		stem += "_pipeline"
	}
	name := ns + "." + stem
	if _, err := ident.Parse(name); err != nil {
		return "", fmt.Errorf("cannot name the pipeline after %s (%v): give --name", file, err)
	}
	return name, nil
}

func pipelineValidateCmd(env Env, g *globals) *cobra.Command {
	var name, output string
	cmd := &cobra.Command{
		Use:   "validate FILE.sql",
		Short: "Parse and bind a pipeline and print its dataset graph; no data moves",
		Long: `Parse and bind a pipeline against the server's tables and print its datasets in
the order they run, with what each reads, its columns and its expectations.
Errors point at the line and column of the problem.`,
		Example: "  sluice pipeline validate orders.sql\n  sluice pipeline validate orders.sql -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := readSQL(cmd, args[0])
			if err != nil {
				return err
			}
			if name == "" {
				if name, err = defaultPipelineName(args[0], src); err != nil {
					return err
				}
			}
			var raw json.RawMessage
			if err := g.client().sendJSON(cmd.Context(), http.MethodPost, "/api/v1/pipelines/validate", server.ValidateRequest{Name: name, SQL: src}, &raw); err != nil {
				return fileError(args[0], err)
			}
			if output == "json" {
				return writeIndented(env.Out, raw)
			}
			var resp server.ValidateResponse
			if err := json.Unmarshal(raw, &resp); err != nil {
				return err
			}
			fmt.Fprintf(env.Out, "pipeline %s is valid: %d datasets, in the order they run\n", name, len(resp.Datasets))
			printGraph(env.Out, resp.Datasets)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "pipeline name (default CATALOG.SCHEMA.<file>_pipeline)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

// fileError prefixes a SQL error with the file name, as compilers do.
func fileError(file string, err error) error {
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusBadRequest && strings.HasPrefix(ae.Message, "line ") {
		return fmt.Errorf("%s: %s", file, ae.Message)
	}
	return err
}

func printGraph(w io.Writer, ds []pipeline.DatasetInfo) {
	for _, d := range ds {
		mode := ""
		if d.Streaming {
			mode = ", streaming"
		}
		fmt.Fprintf(w, "%s (%s%s)\n", d.Name, strings.ReplaceAll(d.Kind, "_", " "), mode)
		fmt.Fprintf(w, "  reads: %s\n", strings.Join(d.Reads, ", "))
		cols := make([]string, len(d.Columns))
		for i, c := range d.Columns {
			cols[i] = c.Name + " " + c.Type
		}
		fmt.Fprintf(w, "  columns: %s\n", strings.Join(cols, ", "))
		for _, e := range d.Expectations {
			fmt.Fprintf(w, "  expect %s (%s): %s\n", e.Name, e.Action, e.Condition)
		}
		if len(d.PrimaryKey) > 0 {
			fmt.Fprintf(w, "  primary key: %s", strings.Join(d.PrimaryKey, ", "))
			if d.TimeSeries != "" {
				fmt.Fprintf(w, " (timeseries %s)", d.TimeSeries)
			}
			fmt.Fprintln(w)
		}
	}
}

func pipelineRunCmd(env Env, g *globals) *cobra.Command {
	var name, trigger string
	var fullRefresh []string
	var fullAll, detach bool
	cmd := &cobra.Command{
		Use:   "run FILE.sql",
		Short: "Create or replace a pipeline and start an update",
		Long: `Create (or replace) a pipeline from a SQL file and start an update.

Triggers, as Spark's:
  available-now   process everything available, then stop (default); the
                  command waits and prints progress, exiting 1 if it fails
  interval=10s    a round every interval, inside the server, until stopped
  continuous      rounds back to back, polling for new data when idle
Continuous and interval pipelines keep running inside ` + "`sluice up`" + ` and resume
when it restarts.

--full-refresh truncates the named tables, clears their checkpoints and
reprocesses all source data; tables with 'pipelines.reset.allowed' = 'false'
refuse it.`,
		Example: `  sluice pipeline run orders.sql
  sluice pipeline run orders.sql --trigger continuous
  sluice pipeline run orders.sql --trigger interval=30s --name main.demo.orders_pipeline
  sluice pipeline run orders.sql --full-refresh main.demo.product_revenue_5m`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := readSQL(cmd, args[0])
			if err != nil {
				return err
			}
			if name == "" {
				if name, err = defaultPipelineName(args[0], src); err != nil {
					return err
				}
			}
			req := server.PipelineRequest{
				Spec:          pipeline.Spec{Name: name, SQL: src, Trigger: trigger},
				UpdateRequest: pipeline.UpdateRequest{FullRefresh: fullRefresh, FullRefreshAll: fullAll},
			}
			var info pipeline.Info
			if err := g.client().sendJSON(cmd.Context(), http.MethodPost, "/api/v1/pipelines", req, &info); err != nil {
				return fileError(args[0], err)
			}
			fmt.Fprintf(env.Out, "pipeline %s: update started (trigger %s)\n", info.Name, info.Trigger)
			if info.Trigger != "available-now" || detach {
				fmt.Fprintf(env.Out, "follow it with: sluice pipeline events %s --follow\n", info.Name)
				return nil
			}
			return waitUpdate(cmd.Context(), env.Out, g, info)
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "pipeline name (default CATALOG.SCHEMA.<file>_pipeline)")
	cmd.Flags().StringVar(&trigger, "trigger", "available-now", "available-now, interval=DURATION or continuous")
	cmd.Flags().StringSliceVar(&fullRefresh, "full-refresh", nil, "tables to truncate and recompute from all source data (comma-separated)")
	cmd.Flags().BoolVar(&fullAll, "full-refresh-all", false, "fully refresh every table of the pipeline")
	cmd.Flags().BoolVar(&detach, "detach", false, "return once the update started, without waiting for it")
	return cmd
}

// waitUpdate prints the update's events until it completes or fails.
func waitUpdate(ctx context.Context, out io.Writer, g *globals, info pipeline.Info) error {
	after := int64(0)
	// Start from the update's own events.
	var evs server.EventList
	if err := g.client().getJSON(ctx, "/api/v1/pipelines/"+info.Name+"/events?limit=100000", &evs); err != nil {
		return err
	}
	for _, e := range evs.Events {
		if e.UpdateID == info.UpdateID {
			break
		}
		after = e.Seq
	}
	for {
		var evs server.EventList
		if err := g.client().getJSON(ctx, fmt.Sprintf("/api/v1/pipelines/%s/events?after=%d&wait=10s", info.Name, after), &evs); err != nil {
			return err
		}
		for _, e := range evs.Events {
			after = e.Seq
			if e.UpdateID != info.UpdateID || e.Type == "create_update" {
				continue
			}
			fmt.Fprintf(out, "%-5s %s\n", e.Level, e.Message)
		}
		var cur pipeline.Info
		if err := g.client().getJSON(ctx, "/api/v1/pipelines/"+info.Name, &cur); err != nil {
			return err
		}
		if cur.UpdateID != info.UpdateID {
			return fmt.Errorf("update %s was replaced by update %s", info.UpdateID, cur.UpdateID)
		}
		switch cur.State {
		case "completed":
			// Print what arrived between the last poll and the end.
			var rest server.EventList
			if err := g.client().getJSON(ctx, fmt.Sprintf("/api/v1/pipelines/%s/events?after=%d", info.Name, after), &rest); err == nil {
				for _, e := range rest.Events {
					if e.UpdateID == info.UpdateID {
						fmt.Fprintf(out, "%-5s %s\n", e.Level, e.Message)
					}
				}
			}
			return nil
		case "failed":
			return fmt.Errorf("pipeline %s update %s failed: %s", info.Name, info.UpdateID, cur.Error)
		case "stopped":
			return fmt.Errorf("pipeline %s update %s was stopped", info.Name, info.UpdateID)
		}
	}
}

func pipelineStatusCmd(env Env, g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "status NAME",
		Short:   "Show a pipeline's state and, per dataset, rows in/out/dropped, watermark and expectations",
		Example: "  sluice pipeline status main.demo.orders_pipeline\n  sluice pipeline status main.demo.orders_pipeline -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var raw json.RawMessage
			if _, err := g.callNamed(cmd, http.MethodGet, "/api/v1/pipelines", args[0], "", &raw); err != nil {
				return err
			}
			if output == "json" {
				return writeIndented(env.Out, raw)
			}
			var info pipeline.Info
			if err := json.Unmarshal(raw, &info); err != nil {
				return err
			}
			printPipeline(env.Out, info)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func printPipeline(w io.Writer, info pipeline.Info) {
	fmt.Fprintf(w, "pipeline %s: %s (trigger %s, owner %s)\n", info.Name, info.State, info.Trigger, info.Owner)
	if info.Error != "" {
		fmt.Fprintf(w, "error: %s\n", info.Error)
	}
	if len(info.Datasets) == 0 {
		fmt.Fprintln(w, "no update has run in this server process yet")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DATASET\tKIND\tSTATE\tBATCHES\tROWS IN\tROWS OUT\tDROPPED (EXPECT)\tDROPPED (LATE)\tWATERMARK\tSTATE ROWS")
	for _, d := range info.Datasets {
		wm := "-"
		if d.Watermark != nil {
			wm = d.Watermark.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%d\n", d.Name, strings.ReplaceAll(d.Kind, "_", " "), d.State,
			d.Batches, d.RowsIn, d.RowsOut, d.DroppedByExpectations, d.DroppedByWatermark, wm, d.StateRows)
	}
	tw.Flush()
	for _, d := range info.Datasets {
		for _, e := range d.Expectations {
			fmt.Fprintf(w, "  %s expect %s (%s): %d passed, %d failed\n", d.Name, e.Name, e.Action, e.Passed, e.Failed)
		}
		if d.Error != "" {
			fmt.Fprintf(w, "  %s error: %s\n", d.Name, d.Error)
		}
	}
}

func pipelineEventsCmd(env Env, g *globals) *cobra.Command {
	var follow bool
	var after int64
	var output string
	cmd := &cobra.Command{
		Use:   "events NAME",
		Short: "Print a pipeline's event log (progress, expectation results, errors)",
		Long: `Print a pipeline's event log, oldest first. The log is also a table,
CATALOG.SCHEMA.<pipeline>_event_log, readable with ` + "`sluice table show`" + `.`,
		Example: "  sluice pipeline events main.demo.orders_pipeline\n  sluice pipeline events main.demo.orders_pipeline --follow\n  sluice pipeline events main.demo.orders_pipeline -o json --after 120",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := ident.Parse(args[0])
			if err != nil {
				return err
			}
			for {
				q := url.Values{"after": {fmt.Sprint(after)}}
				if follow {
					q.Set("wait", "30s")
				}
				var evs server.EventList
				if err := g.client().getJSON(cmd.Context(), "/api/v1/pipelines/"+n.String()+"/events?"+q.Encode(), &evs); err != nil {
					return err
				}
				for _, e := range evs.Events {
					after = e.Seq
					if output == "json" {
						b, _ := json.Marshal(e)
						fmt.Fprintln(env.Out, string(b))
						continue
					}
					ds := ""
					if e.Dataset != "" {
						ds = " [" + e.Dataset + "]"
					}
					fmt.Fprintf(env.Out, "%d %s %-5s %s%s %s\n", e.Seq, e.Timestamp.Format(time.RFC3339), e.Level, e.Type, ds, e.Message)
				}
				if !follow && len(evs.Events) == 0 {
					return nil
				}
				if err := cmd.Context().Err(); err != nil {
					return nil
				}
			}
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events as they come (Ctrl-C to stop)")
	cmd.Flags().Int64Var(&after, "after", 0, "print only events after this sequence number")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json (one event per line)")
	return cmd
}

func pipelineListCmd(env Env, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List pipelines and their state",
		Example: "  sluice pipeline list",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var list server.PipelineList
			if err := g.client().getJSON(cmd.Context(), "/api/v1/pipelines", &list); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(env.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSTATE\tTRIGGER\tOWNER")
			for _, p := range list.Pipelines {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, p.State, p.Trigger, p.Owner)
			}
			return tw.Flush()
		},
	}
}

func pipelineUpdateCmd(env Env, g *globals) *cobra.Command {
	var fullRefresh []string
	var fullAll, detach bool
	cmd := &cobra.Command{
		Use:     "update NAME",
		Short:   "Start a new update of a pipeline with its stored SQL and trigger",
		Example: "  sluice pipeline update main.demo.orders_pipeline\n  sluice pipeline update main.demo.orders_pipeline --full-refresh main.demo.orders_silver",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := ident.Parse(args[0])
			if err != nil {
				return err
			}
			var info pipeline.Info
			req := pipeline.UpdateRequest{FullRefresh: fullRefresh, FullRefreshAll: fullAll}
			if err := g.client().sendJSON(cmd.Context(), http.MethodPost, "/api/v1/pipelines/"+n.String()+"/updates", req, &info); err != nil {
				return err
			}
			fmt.Fprintf(env.Out, "pipeline %s: update started (trigger %s)\n", info.Name, info.Trigger)
			if info.Trigger != "available-now" || detach {
				return nil
			}
			return waitUpdate(cmd.Context(), env.Out, g, info)
		},
	}
	cmd.Flags().StringSliceVar(&fullRefresh, "full-refresh", nil, "tables to truncate and recompute from all source data (comma-separated)")
	cmd.Flags().BoolVar(&fullAll, "full-refresh-all", false, "fully refresh every table of the pipeline")
	cmd.Flags().BoolVar(&detach, "detach", false, "return once the update started, without waiting for it")
	return cmd
}

func pipelineNamedCmd(env Env, g *globals, verb, short, method, suffix string) *cobra.Command {
	return &cobra.Command{
		Use:     verb + " NAME",
		Short:   short,
		Example: "  sluice pipeline " + verb + " main.demo.orders_pipeline",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := g.callNamed(cmd, method, "/api/v1/pipelines", args[0], suffix, nil)
			if err != nil {
				return err
			}
			past := map[string]string{"stop": "stopped", "delete": "deleted"}[verb]
			fmt.Fprintf(env.Out, "pipeline %s %s\n", n, past)
			return nil
		},
	}
}
