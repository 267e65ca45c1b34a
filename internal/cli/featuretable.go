package cli

import (
	"fmt"
	"net/http"

	"github.com/spf13/cobra"
)

func featureTableCmd(env Env, g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "feature-table",
		Short: "Work with feature tables (tables with a PRIMARY KEY) and their online copies",
		Long: `A feature table is a table with a PRIMARY KEY, usually written by a pipeline
(docs/sql.md, "Feature tables online"). Tables marked TBLPROPERTIES ('online' = 'true')
are synced to the online store as their pipeline commits; sync publishes any
feature table on demand. Serve features with POST /get-online-features (docs/api.md).`,
	}
	sync := &cobra.Command{
		Use:     "sync NAME",
		Short:   "Publish the rows a feature table gained since its last sync to the online store",
		Example: "  sluice feature-table sync main.features.user_activity",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var st struct {
				Table    string `json:"table"`
				Rows     int64  `json:"rows_written"`
				Full     bool   `json:"full"`
				Snapshot int64  `json:"snapshot_id"`
			}
			if _, err := g.callNamed(cmd, http.MethodPost, "/api/v1/feature-tables", args[0], "/sync", &st); err != nil {
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
	publish := &cobra.Command{
		Use:     "publish NAME",
		Short:   "Mark a feature table online and sync it; its pipeline then keeps it synced",
		Example: "  sluice feature-table publish main.features.user_activity",
		Args:    cobra.ExactArgs(1),
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
	cmd.AddCommand(sync, publish)
	return cmd
}
