package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/feature/window"
	"github.com/sluice-dev/sluice/internal/ident"
	"github.com/sluice-dev/sluice/internal/publish"
)

// featureTableInfo is the API's description of a feature table.
type featureTableInfo struct {
	Name     string   `json:"name"`
	Keys     []string `json:"keys"`
	TimeKey  string   `json:"timestamp_key"`
	TTL      string   `json:"ttl"`
	Online   bool     `json:"online"`
	Windowed bool     `json:"windowed"`
	Pipeline string   `json:"pipeline"`
	Features []struct {
		Name      string `json:"name"`
		Function  string `json:"function"`
		Window    string `json:"window"`
		Precision string `json:"precision"`
	} `json:"features"`
	SQL   string `json:"sql"`
	State *struct {
		State string `json:"state"`
		Error string `json:"error"`
	} `json:"pipeline_state"`
}

func printFeatureTable(w io.Writer, info featureTableInfo, withSQL bool) {
	kind := "feature table"
	if info.Windowed {
		kind = "windowed feature table"
	}
	fmt.Fprintf(w, "%s %s: keys (%s)", kind, info.Name, strings.Join(info.Keys, ", "))
	if info.TimeKey != "" {
		fmt.Fprintf(w, ", event time %s", info.TimeKey)
	}
	if info.TTL != "" {
		fmt.Fprintf(w, ", ttl %s", info.TTL)
	}
	fmt.Fprintf(w, ", online %v\n", info.Online)
	for _, f := range info.Features {
		switch {
		case f.Window != "":
			fmt.Fprintf(w, "  %-20s %s over %s (window start moves in steps of %s)\n", f.Name, f.Function, f.Window, f.Precision)
		case f.Function != "":
			fmt.Fprintf(w, "  %-20s %s (newest value)\n", f.Name, f.Function)
		default:
			fmt.Fprintf(w, "  %s\n", f.Name)
		}
	}
	if info.Pipeline != "" {
		state := ""
		if info.State != nil {
			state = " (" + info.State.State
			if info.State.Error != "" {
				state += ": " + info.State.Error
			}
			state += ")"
		}
		fmt.Fprintf(w, "written by pipeline %s%s\n", info.Pipeline, state)
	}
	if withSQL && info.SQL != "" {
		fmt.Fprintf(w, "%s", info.SQL)
	}
}

func featureTableCmd(env Env, g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "feature-table",
		Short: "Work with feature tables (tables with a PRIMARY KEY) and their online copies",
		Long: `A feature table is a table with a PRIMARY KEY, usually written by a pipeline
(docs/sql.md, "Feature tables online"). Tables marked TBLPROPERTIES ('online' = 'true')
are synced to the online store as their pipeline commits; sync publishes any
feature table on demand. Serve features with POST /get-online-features (docs/api.md).`,
	}
	var full bool
	sync := &cobra.Command{
		Use:   "sync NAME",
		Short: "Publish the rows a feature table gained since its last sync to the online store",
		Long: `Publish to the online store (embedded, or Redis with "sluice up --online")
the rows a feature table gained since its last sync. After a rewrite of the
table (a full refresh, an overwrite, or expired history) the sync is full: it
clears the table's online rows and writes the whole table. After a merge on
the primary key it writes the whole table over the online rows, which stay
readable meanwhile.

Online tables already sync after every pipeline commit: a table marked online
(TBLPROPERTIES ('online' = 'true'), "online: true" in a spec, or "sluice
feature-table publish") is synced by its pipeline each time it commits, and
"sluice feature-table write" syncs it before it returns. sync is the triggered
(on-demand) sync, for the rest:
  - a feature table that is not marked online, or was written outside a
    pipeline (e.g. by "sluice feature-table write" before it was published);
  - catching up after an online sync failed, e.g. while the online store was
    unreachable: the pipeline's commit stands but its round fails, and sync
    publishes what that sync missed.
It does not mark the table online (publish does). Running it when nothing is
new writes 0 rows.

sync keeps its position with the table, not in the online store, so it does
not notice an online store that was emptied or replaced (FLUSHDB, another
--online URL) and writes nothing new: --full then clears the table's online
rows and writes the whole table again.`,
		Example: `  sluice feature-table sync main.features.user_profile
  # synced main.features.user_profile online: 2 rows written (new rows, up to snapshot 4)
  sluice feature-table sync main.features.user_profile --full     # after a FLUSHDB
  # synced main.features.user_profile online: 1000 rows written (the whole table, up to snapshot 4)
  sluice feature-table sync main.features.user_activity --server http://10.0.0.5:8080`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var st struct {
				Table    string `json:"table"`
				Rows     int64  `json:"rows_written"`
				Full     bool   `json:"full"`
				Snapshot int64  `json:"snapshot_id"`
			}
			suffix := "/sync"
			if full {
				suffix += "?full=true"
			}
			if _, err := g.callNamed(cmd, http.MethodPost, "/api/v1/feature-tables", args[0], suffix, &st); err != nil {
				return err
			}
			how := "new rows"
			if st.Full {
				how = "the whole table"
			}
			fmt.Fprintf(env.Out, "synced %s online: %d rows written (%s, up to snapshot %d)\n", st.Table, st.Rows, how, st.Snapshot)
			return nil
		},
	}
	sync.Flags().BoolVar(&full, "full", false, "clear the table's online rows and write the whole table (after the online store was emptied or replaced)")
	publishCmd := &cobra.Command{
		Use:   "publish NAME",
		Short: "Mark a feature table online and sync it; its pipeline then keeps it synced",
		Long: `Mark a feature table online (the table property online = true) and sync it
to the online store at once, as "sluice feature-table sync" does. From then on
the pipeline that writes the table syncs it after every commit, and "sluice
feature-table write" syncs it before it returns, as if it had been declared
with TBLPROPERTIES ('online' = 'true') or "online: true". Its features are then
served by POST /get-online-features and by the serving endpoints of models
trained on it (docs/api.md, "Online features").

Publishing a table that is already online only syncs it. The first sync of a
table writes all of it.`,
		Example: `  sluice feature-table publish main.features.user_activity
  # published main.features.user_activity online: 1250 rows written; its pipeline now syncs it after every commit
  curl -s localhost:8080/get-online-features -d '{"features": ["main.features.user_activity:revenue_1h"], "entities": {"user_id": ["u1"]}}'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var st struct {
				Table string `json:"table"`
				Rows  int64  `json:"rows_written"`
			}
			if _, err := g.callNamed(cmd, http.MethodPost, "/api/v1/feature-tables", args[0], "/publish", &st); err != nil {
				return err
			}
			fmt.Fprintf(env.Out, "published %s online: %d rows written; its pipeline now syncs it after every commit\n", st.Table, st.Rows)
			return nil
		},
	}
	var file string
	create := &cobra.Command{
		Use:   "create -f SPEC.yaml",
		Short: "Create a feature table from a YAML spec: windowed (with its pipeline) or plain",
		Long: `Create a feature table from a YAML (or JSON) spec (docs/features.md).

A windowed spec (source, entity, timestamp, features) declares count, sum, avg, min, max,
count_distinct and last over sliding windows that end at the read time. sluice compiles it
to a continuous pipeline writing the table's feature log (one row per event) and serves each
window as of the moment it is read, online and in training sets alike.

A plain spec (name, primary_keys, timestamp_key, schema, ttl, online) makes an empty feature
table that takes rows with "sluice feature-table write", merged on the keys.`,
		Example: `  sluice feature-table create -f user_activity.yaml
  # user_activity.yaml:
  #   name: main.features.user_activity
  #   source: main.demo.events_ingestion
  #   entity: {user_id: value.user_id}
  #   timestamp: value.event_ts
  #   features:
  #     - {name: event_count_1h, function: count, window: 1h}
  #     - {name: revenue_1h, function: sum, column: value.revenue, filter: "value.event_type = 'purchase'", window: 1h}
  #   ttl: 7d
  #   online: true
  sluice feature-table create -f user_profile.yaml
  # user_profile.yaml:
  #   name: main.features.user_profile
  #   primary_keys: [user_id]
  #   schema: "user_id STRING, account_age_days BIGINT, subscription_tier STRING"
  #   online: true`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return fmt.Errorf("give the spec with -f FILE (or -f - for stdin)")
			}
			b, err := readInput(cmd, file)
			if err != nil {
				return err
			}
			var spec any
			if window.IsSpec(b) {
				ws, err := window.ParseSpec(b)
				if err != nil {
					return fmt.Errorf("%s: %w", file, err)
				}
				spec = ws
			} else {
				ts, _, err := publish.ParseTableSpec(b)
				if err != nil {
					return fmt.Errorf("%s: %w", file, err)
				}
				spec = ts
			}
			var info featureTableInfo
			if err := g.client().sendJSON(cmd.Context(), http.MethodPost, "/api/v1/feature-tables", spec, &info); err != nil {
				return err
			}
			fmt.Fprint(env.Out, "created ")
			printFeatureTable(env.Out, info, false)
			return nil
		},
	}
	create.Flags().StringVarP(&file, "file", "f", "", "the spec, YAML or JSON (- for stdin)")
	var showSQL bool
	get := &cobra.Command{
		Use:   "get NAME",
		Short: "Describe a feature table: keys, features, windows and the pipeline that writes it",
		Long: `Describe a feature table: its entity keys, its timestamp key ("event time"),
its TTL, whether it is online, and its features, one a line. For a windowed
feature table (docs/features.md) each feature shows its function and window
and the step its window start moves in, and the last line names the pipeline
that writes the table's feature log, with its state. --sql also prints that
pipeline's SQL, generated from the spec. A table without a PRIMARY KEY is not
a feature table: get says so (use "sluice table show" for it).`,
		Example: `  sluice feature-table get main.features.user_profile
  # feature table main.features.user_profile: keys (user_id), online true
  #   account_age_days
  #   subscription_tier
  sluice feature-table get main.features.user_activity --sql`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var info featureTableInfo
			if _, err := g.callNamed(cmd, http.MethodGet, "/api/v1/feature-tables", args[0], "", &info); err != nil {
				return err
			}
			printFeatureTable(env.Out, info, showSQL)
			return nil
		},
	}
	get.Flags().BoolVar(&showSQL, "sql", false, "also print the pipeline SQL generated from a windowed spec")
	var rowsFile string
	write := &cobra.Command{
		Use:   "write NAME -f ROWS.json",
		Short: "Merge rows into a feature table made with create: a row replaces the stored one with its keys",
		Long: `Merge rows into a plain feature table made with "sluice feature-table create", as the
feature store's write_table(mode="merge"): a row whose keys (and timestamp key) match a
stored row replaces it; others are added. ROWS.json holds a JSON array of objects, one per
row, with the table's columns (timestamps as RFC 3339 strings). A table marked online is
synced at once.`,
		Example: `  echo '[{"user_id":"u1","account_age_days":412,"subscription_tier":"pro"}]' | sluice feature-table write main.features.user_profile -f -`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if rowsFile == "" {
				return fmt.Errorf("give the rows with -f FILE (a JSON array of objects; - for stdin)")
			}
			b, err := readInput(cmd, rowsFile)
			if err != nil {
				return err
			}
			var out struct {
				Table        string `json:"table"`
				RowsWritten  int64  `json:"rows_written"`
				SyncedOnline bool   `json:"synced_online"`
			}
			n, err := ident.Parse(args[0])
			if err != nil {
				return err
			}
			if err := g.client().sendJSON(cmd.Context(), http.MethodPost, "/api/v1/feature-tables/"+n.String()+"/rows", map[string]json.RawMessage{"rows": b}, &out); err != nil {
				return err
			}
			online := ""
			if out.SyncedOnline {
				online = " and synced online"
			}
			fmt.Fprintf(env.Out, "merged %d rows into %s%s\n", out.RowsWritten, out.Table, online)
			return nil
		},
	}
	write.Flags().StringVarP(&rowsFile, "file", "f", "", "the rows: a JSON array of objects (- for stdin)")
	cmd.AddCommand(create, get, write, sync, publishCmd)
	return cmd
}
