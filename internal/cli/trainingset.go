package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/feature"
	"github.com/sluice-dev/sluice/internal/server"
)

func trainingSetCmd(env Env, g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "training-set",
		Short: "Build point-in-time correct training sets from labels and feature tables",
		Long: `A training set joins labels (a Parquet file or glob, or a table) with feature
tables: each label row gets, from each lookup, the newest feature row at or
before the label's timestamp (within the table's TTL), never a later one.
The result keeps every label row, in order. sluice records the training set
with the exact table snapshots and label file digests it read, so recreate
writes the same file again, byte for byte. See docs/features.md.`,
	}
	cmd.AddCommand(trainingSetCreateCmd(env, g), trainingSetListCmd(env, g), trainingSetGetCmd(env, g),
		trainingSetRecreateCmd(env, g), trainingSetDeleteCmd(env, g))
	return cmd
}

func trainingSetCreateCmd(env Env, g *globals) *cobra.Command {
	var file, out, name string
	var progress bool
	cmd := &cobra.Command{
		Use:   "create -f SPEC.yaml [--out FILE.parquet] [--name NAME]",
		Short: "Create a training set, record it, and write it as Parquet",
		Long: `Create a training set from a spec (docs/features.md), record it in the
catalog and, with --out, stream its rows from the server and write them to a
local Parquet file. A relative labels path in the spec is relative to the
current directory; the server reads it, so it must be on the server's
filesystem. Without --out the training set is only recorded (recreate
writes it later). A progress bar goes to standard error when it is a
terminal (or with --progress).`,
		Example: `  sluice training-set create -f churn.yaml --out train.parquet
  sluice training-set create -f churn.yaml --out train.parquet --name main.ml.churn_train_v1
  sluice training-set create -f churn.yaml --name main.ml.churn_train_v2   # record only`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := readInput(cmd, file)
			if err != nil {
				return fmt.Errorf("reading the training set spec: %w", err)
			}
			spec, err := feature.ParseSpec(b)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			if !spec.LabelsIsTable() && !filepath.IsAbs(spec.Labels) {
				if spec.Labels, err = filepath.Abs(spec.Labels); err != nil {
					return err
				}
			}
			req := server.TrainingSetRequest{Name: name, Spec: spec}
			if out == "" {
				var resp server.TrainingSetResponse
				if err := g.client().sendJSON(cmd.Context(), http.MethodPost, "/api/v1/training-sets", req, &resp); err != nil {
					return err
				}
				printTrainingSet(env.Out, resp.TrainingSet)
				return nil
			}
			body, _ := json.Marshal(req)
			return g.streamToParquet(cmd.Context(), env, "/api/v1/training-sets", body, out, progress || isTerminal(env.Err))
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the training set spec (YAML); - reads standard input")
	cmd.Flags().StringVar(&out, "out", "", "write the rows to this local Parquet file")
	cmd.Flags().StringVar(&name, "name", "", "name of the training set (default: generated, ts_DATE_TIME_XXXX)")
	cmd.Flags().BoolVar(&progress, "progress", false, "show the progress bar even when standard error is not a terminal")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

func trainingSetRecreateCmd(env Env, g *globals) *cobra.Command {
	var out string
	var progress bool
	cmd := &cobra.Command{
		Use:   "recreate NAME --out FILE.parquet",
		Short: "Write a recorded training set again, from the same snapshots: the same bytes",
		Long: `Recompute a recorded training set from exactly what it read the first time
(the same table snapshots, the same label files, checked by SHA-256) and write
it as Parquet. The file is byte-identical to the one create wrote. It fails
if a labels file changed or a snapshot was expired.`,
		Example: "  sluice training-set recreate main.ml.churn_train_v1 --out train.parquet",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.streamToParquet(cmd.Context(), env, "/api/v1/training-sets/"+args[0]+"/recreate", nil, out, progress || isTerminal(env.Err))
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "the local Parquet file to write (required)")
	cmd.Flags().BoolVar(&progress, "progress", false, "show the progress bar even when standard error is not a terminal")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

func trainingSetListCmd(env Env, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List recorded training sets",
		Example: "  sluice training-set list",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var l server.TrainingSetList
			if err := g.client().getJSON(cmd.Context(), "/api/v1/training-sets", &l); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(env.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tROWS\tCOLUMNS\tTABLES\tOWNER\tCREATED")
			for _, ts := range l.TrainingSets {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\n", ts.Name, ts.Plan.Rows, len(ts.Plan.Schema), tablesOf(ts.Plan),
					ts.Owner, ts.CreatedAt.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
}

func trainingSetGetCmd(env Env, g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "get NAME",
		Short:   "Show a training set: its spec, the snapshots it read and its columns",
		Example: "  sluice training-set get main.ml.churn_train_v1\n  sluice training-set get main.ml.churn_train_v1 -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var raw json.RawMessage
			if err := g.client().getJSON(cmd.Context(), "/api/v1/training-sets/"+args[0], &raw); err != nil {
				return err
			}
			if output == "json" {
				return writeIndented(env.Out, raw)
			}
			var ts feature.TrainingSet
			if err := json.Unmarshal(raw, &ts); err != nil {
				return err
			}
			printTrainingSet(env.Out, ts)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

func trainingSetDeleteCmd(env Env, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME",
		Short:   "Forget a training set and release the table snapshots it kept from expiry",
		Example: "  sluice training-set delete main.ml.churn_train_v1",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.client().do(cmd.Context(), http.MethodDelete, "/api/v1/training-sets/"+args[0], nil, "", nil); err != nil {
				return err
			}
			fmt.Fprintf(env.Out, "training set %s deleted\n", args[0])
			return nil
		},
	}
}

func tablesOf(p feature.Plan) string {
	var parts []string
	for _, l := range p.Lookups {
		parts = append(parts, l.Table+"@"+strconv.FormatInt(l.Snapshot, 10))
	}
	return strings.Join(parts, ",")
}

func printTrainingSet(w io.Writer, ts feature.TrainingSet) {
	fmt.Fprintf(w, "training set %s (owner %s, created %s)\n", ts.Name, ts.Owner, ts.CreatedAt.Format(time.RFC3339))
	p := ts.Plan
	if p.Labels.Table != "" {
		fmt.Fprintf(w, "labels:     table %s at snapshot %d\n", p.Labels.Table, p.Labels.Snapshot)
	}
	for _, f := range p.Labels.Files {
		fmt.Fprintf(w, "labels:     %s (%d bytes, sha256 %s)\n", f.Path, f.Size, f.SHA256[:16])
	}
	fmt.Fprintf(w, "rows:       %d (as-of column %s)\n", p.Rows, p.TimestampColumn)
	for _, l := range p.Lookups {
		ts := l.TimestampKey
		if ts == "" {
			ts = "none (keys only)"
		}
		ttl := ""
		if l.TTL != "" {
			ttl = ", ttl " + l.TTL
		}
		fmt.Fprintf(w, "lookup:     %s at snapshot %d: %s = %s, timestamp key %s%s\n", l.Table, l.Snapshot,
			strings.Join(l.LookupKey, ","), strings.Join(l.TableKey, ","), ts, ttl)
		for i, f := range l.Features {
			if l.Columns[i] != f {
				fmt.Fprintf(w, "              %s as %s\n", f, l.Columns[i])
			} else {
				fmt.Fprintf(w, "              %s\n", f)
			}
		}
	}
	fmt.Fprint(w, "columns:   ")
	for _, c := range p.Schema {
		fmt.Fprintf(w, " %s", c.Name)
	}
	fmt.Fprintln(w)
}

// streamToParquet posts body to path asking for an Arrow stream and writes
// the rows to the local Parquet file out.
func (g *globals) streamToParquet(ctx context.Context, env Env, path string, body []byte, out string, showProgress bool) error {
	c := g.client()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.base, "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", server.ArrowStreamType)
	req.Header.Set(server.UserHeader, c.user)
	bar := newProgressBar(env.Err, showProgress)
	defer bar.stop()
	// No client timeout: a large training set streams for long; ctx
	// (Ctrl-C) cancels it.
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the sluice server at %s (is `sluice up` running? set --server or SLUICE_SERVER): %w", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(resp.Body)
		var eb server.ErrorBody
		if json.Unmarshal(b, &eb) == nil && eb.Error.Message != "" {
			return &APIError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message, Field: eb.Error.Field}
		}
		return &APIError{Status: resp.StatusCode, Code: http.StatusText(resp.StatusCode), Message: strings.TrimSpace(string(b))}
	}
	name := resp.Header.Get(server.TrainingSetHeader)
	total, _ := strconv.ParseInt(resp.Header.Get(server.RowsHeader), 10, 64)
	bar.start(name, total)
	rdr, err := ipc.NewReader(resp.Body)
	if err != nil {
		return fmt.Errorf("reading the training set stream: %w", err)
	}
	defer rdr.Release()
	began := time.Now()
	rows, err := feature.WriteParquetFile(out, rdr, bar.set)
	if err != nil {
		return fmt.Errorf("training set %s: %w", name, err)
	}
	bar.stop()
	cols := rdr.Schema().NumFields()
	fmt.Fprintf(env.Out, "training set %s: wrote %d rows, %d columns to %s in %s\n", name, rows, cols, out, time.Since(began).Round(time.Millisecond))
	return nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressBar draws "joining…" until the first rows arrive, then rows
// received of the total, on one line of w, four times a second.
type progressBar struct {
	w       io.Writer
	on      bool
	mu      sync.Mutex
	name    string
	total   int64
	rows    int64
	began   time.Time
	quit    chan struct{}
	done    sync.WaitGroup
	stopped bool
}

func newProgressBar(w io.Writer, on bool) *progressBar {
	return &progressBar{w: w, on: on, began: time.Now()}
}

func (p *progressBar) start(name string, total int64) {
	if !p.on {
		return
	}
	p.mu.Lock()
	p.name, p.total = name, total
	p.mu.Unlock()
	p.quit = make(chan struct{})
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			p.draw()
			select {
			case <-p.quit:
				return
			case <-t.C:
			}
		}
	}()
}

func (p *progressBar) set(rows int64) {
	p.mu.Lock()
	p.rows = rows
	p.mu.Unlock()
}

func (p *progressBar) draw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	el := time.Since(p.began).Truncate(100 * time.Millisecond)
	if p.rows == 0 {
		fmt.Fprintf(p.w, "\r%s: joining %d label rows… %s ", p.name, p.total, el)
		return
	}
	const width = 30
	frac := 1.0
	if p.total > 0 {
		frac = min(1, float64(p.rows)/float64(p.total))
	}
	n := int(frac * width)
	fmt.Fprintf(p.w, "\r%s: [%s%s] %3.0f%% %d/%d rows %s ", p.name, strings.Repeat("#", n), strings.Repeat("-", width-n),
		frac*100, p.rows, p.total, el)
}

func (p *progressBar) stop() {
	if !p.on || p.quit == nil || p.stopped {
		return
	}
	p.stopped = true
	close(p.quit)
	p.done.Wait()
	p.draw()
	fmt.Fprintln(p.w)
}

func modelCmd(env Env, g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "model",
		Short: "Register models against the training sets they were trained on (lineage)",
		Long: `A model is logged against the training set it was trained on. The training
set records the feature tables, lookup keys, features and their column names
(renames and table prefixes included), so serving the model needs no
feature list: POST /api/v1/serving/NAME/invocations takes the lookup keys
and returns the features from the online store under the training set's
column names. See docs/features.md and docs/api.md.`,
		Example: `  sluice model log main.ml.churn_model --training-set main.ml.churn_train_v1
  sluice model get main.ml.churn_model
  sluice model list
  sluice model delete main.ml.churn_model
  curl -s 127.0.0.1:8080/api/v1/serving/main.ml.churn_model/invocations \
    -d '{"dataframe_records": [{"user_id": "u1"}]}'`,
	}
	var ts string
	logc := &cobra.Command{
		Use:   "log NAME --training-set TS",
		Short: "Record that model NAME was trained on training set TS",
		Long: `Record a model's lineage: the training set it was trained on, and so the
feature tables, features and snapshots. Logging a name again records the new
training set (a new version).`,
		Example: "  sluice model log main.ml.churn_model --training-set main.ml.churn_train_v1",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var m feature.Model
			if err := g.client().sendJSON(cmd.Context(), http.MethodPost, "/api/v1/models", server.ModelRequest{Name: args[0], TrainingSet: ts}, &m); err != nil {
				return err
			}
			printModel(env.Out, m)
			return nil
		},
	}
	logc.Flags().StringVar(&ts, "training-set", "", "the training set the model was trained on (required)")
	_ = logc.MarkFlagRequired("training-set")
	var output string
	get := &cobra.Command{
		Use:   "get NAME",
		Short: "Show a model's training set and the features it needs",
		Long: `Show a model's lineage: the training set it was trained on and, per feature
table, the lookup key and the features serving it reads. A feature that has
another name in the training set (a rename, or a table prefix from a clash)
is shown as "feature as column": serving returns it under that column
name. With -o json, the API's JSON (docs/api.md).`,
		Example: `  sluice model get main.ml.churn_model
  sluice model get main.ml.churn_model -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var raw json.RawMessage
			if err := g.client().getJSON(cmd.Context(), "/api/v1/models/"+args[0], &raw); err != nil {
				return err
			}
			if output == "json" {
				return writeIndented(env.Out, raw)
			}
			var m feature.Model
			if err := json.Unmarshal(raw, &m); err != nil {
				return err
			}
			printModel(env.Out, m)
			return nil
		},
	}
	get.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	cmd.AddCommand(logc, get, modelListCmd(env, g), modelDeleteCmd(env, g))
	return cmd
}

func modelListCmd(env Env, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List logged models and their training sets",
		Example: "  sluice model list",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var l server.ModelList
			if err := g.client().getJSON(cmd.Context(), "/api/v1/models", &l); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(env.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tTRAINING SET\tFEATURE TABLES\tOWNER\tCREATED")
			for _, m := range l.Models {
				tables := make([]string, len(m.Features))
				for i, f := range m.Features {
					tables[i] = f.Table
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.Name, m.TrainingSet, strings.Join(tables, ","),
					m.Owner, m.CreatedAt.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
}

func modelDeleteCmd(env Env, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME",
		Short:   "Forget a model's lineage (its training set is kept)",
		Example: "  sluice model delete main.ml.churn_model",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.client().do(cmd.Context(), http.MethodDelete, "/api/v1/models/"+args[0], nil, "", nil); err != nil {
				return err
			}
			fmt.Fprintf(env.Out, "model %s deleted\n", args[0])
			return nil
		},
	}
}

func printModel(w io.Writer, m feature.Model) {
	fmt.Fprintf(w, "model %s: training set %s (logged by %s, %s)\n", m.Name, m.TrainingSet, m.Owner, m.CreatedAt.Format(time.RFC3339))
	for _, f := range m.Features {
		names := make([]string, len(f.Features))
		for i, feat := range f.Features {
			names[i] = feat
			if i < len(f.Columns) && f.Columns[i] != feat {
				names[i] = feat + " as " + f.Columns[i]
			}
		}
		fmt.Fprintf(w, "  %s by %s: %s\n", f.Table, strings.Join(f.LookupKey, ","), strings.Join(names, ", "))
	}
}
