package cli

import (
	"bufio"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/broker"
	"github.com/sluice-dev/sluice/internal/catalog"
	"github.com/sluice-dev/sluice/internal/server"
)

func topicCmd(env Env, g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "topic", Short: "Create and list topics on the server's broker"}
	var partitions int32
	create := &cobra.Command{
		Use:     "create NAME",
		Short:   "Create a topic (the embedded broker also auto-creates topics on first produce)",
		Example: "  sluice topic create orders --partitions 3",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := server.TopicRequest{Name: args[0], Partitions: partitions}
			if err := g.client().sendJSON(cmd.Context(), http.MethodPost, "/api/v1/topics", req, nil); err != nil {
				return err
			}
			fmt.Fprintf(env.Out, "created topic %s with %d partitions\n", req.Name, req.Partitions)
			return nil
		},
	}
	create.Flags().Int32Var(&partitions, "partitions", 1, "number of partitions")
	list := &cobra.Command{
		Use:     "list",
		Short:   "List topics with their partitions and record counts",
		Example: "  sluice topic list",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct{ Topics []broker.TopicInfo }
			if err := g.client().getJSON(cmd.Context(), "/api/v1/topics", &out); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(env.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TOPIC\tPARTITIONS\tRECORDS")
			for _, t := range out.Topics {
				fmt.Fprintf(tw, "%s\t%d\t%d\n", t.Name, len(t.Partitions), t.Records)
			}
			return tw.Flush()
		},
	}
	cmd.AddCommand(create, list)
	return cmd
}

func secretCmd(env Env, g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Store secrets (e.g. a TLS key password) encrypted in the catalog",
		Long: `Secrets are sealed with AES-256-GCM under a key kept in the data directory
(secret.key) and are never printed back. Specs refer to them by scope and
key, e.g. connection.mtls.key_password_ref: {scope: kafka, key: key_password}.`,
	}
	put := &cobra.Command{
		Use:   "put SCOPE KEY",
		Short: "Store a secret; its value is read from standard input",
		Example: `  printf '%s' "$KEY_PASSWORD" | sluice secret put kafka key_password
  sluice secret put kafka key_password < password.txt`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			r := bufio.NewReader(cmd.InOrStdin())
			v, err := r.ReadString(0)
			if err != nil && v == "" {
				return fmt.Errorf("reading the secret's value from standard input: nothing was given")
			}
			v = strings.TrimRight(v, "\r\n\x00")
			if v == "" {
				return fmt.Errorf("the secret's value is empty")
			}
			path := "/api/v1/secrets/" + url.PathEscape(args[0]) + "/" + url.PathEscape(args[1])
			if err := g.client().sendJSON(cmd.Context(), http.MethodPut, path, server.SecretRequest{Value: v}, nil); err != nil {
				return err
			}
			fmt.Fprintf(env.Out, "stored secret %s/%s\n", args[0], args[1])
			return nil
		},
	}
	list := &cobra.Command{
		Use:     "list [SCOPE]",
		Short:   "List secrets (names only; values are never shown)",
		Example: "  sluice secret list\n  sluice secret list kafka",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := ""
			if len(args) == 1 {
				q = "?scope=" + url.QueryEscape(args[0])
			}
			var out struct{ Secrets []catalog.SecretInfo }
			if err := g.client().getJSON(cmd.Context(), "/api/v1/secrets"+q, &out); err != nil {
				return err
			}
			for _, s := range out.Secrets {
				fmt.Fprintf(env.Out, "%s/%s\n", s.Scope, s.Key)
			}
			return nil
		},
	}
	del := &cobra.Command{
		Use:     "delete SCOPE KEY",
		Short:   "Delete a secret",
		Example: "  sluice secret delete kafka key_password",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "/api/v1/secrets/" + url.PathEscape(args[0]) + "/" + url.PathEscape(args[1])
			if err := g.client().do(cmd.Context(), http.MethodDelete, path, nil, "", nil); err != nil {
				return err
			}
			fmt.Fprintf(env.Out, "deleted secret %s/%s\n", args[0], args[1])
			return nil
		},
	}
	cmd.AddCommand(put, list, del)
	return cmd
}
