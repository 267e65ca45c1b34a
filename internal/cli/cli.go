// Package cli holds sluice's command-line interface as a library: every
// command is built by a function that takes its output writer, so that
// commands are tested by running them (cmd/sluice only wires os.Args).
// All commands but `up` are clients of the REST API (--server).
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/user"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/ident"
)

// Env is what commands read and write.
type Env struct {
	Out, Err io.Writer
	In       io.Reader
	Getenv   func(string) string
}

// DefaultServer is the REST API the commands talk to by default.
const DefaultServer = "http://127.0.0.1:8080"

type globals struct {
	server string
	user   string
}

// New returns the root command.
func New(env Env) *cobra.Command {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	g := &globals{}
	root := &cobra.Command{
		Use:   "sluice",
		Short: "sluice: a real-time feature platform in one binary",
		Long: `sluice ingests Kafka streams exactly once into Iceberg tables, runs SQL
pipelines over them, and serves features online and for training.

Start a server with its embedded Kafka-protocol broker and a demo stream:
  sluice up --demo
Then, in another terminal:
  sluice stream list main.demo
  sluice table show main.demo.orders_ingestion --limit 5`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(env.Out)
	root.SetErr(env.Err)
	if env.In != nil {
		root.SetIn(env.In)
	}
	defServer := env.Getenv("SLUICE_SERVER")
	if defServer == "" {
		defServer = DefaultServer
	}
	defUser := env.Getenv("SLUICE_USER")
	if defUser == "" {
		if u, err := user.Current(); err == nil {
			defUser = u.Username
		}
	}
	root.PersistentFlags().StringVar(&g.server, "server", defServer, "sluice server URL (env SLUICE_SERVER)")
	root.PersistentFlags().StringVar(&g.user, "user", defUser, "who you act as; until authentication lands the server trusts it (env SLUICE_USER)")
	root.AddCommand(upCmd(env), streamCmd(env, g), pipelineCmd(env, g), featureTableCmd(env, g), trainingSetCmd(env, g), modelCmd(env, g), tableCmd(env, g), topicCmd(env, g), secretCmd(env, g))
	return root
}

// Run runs the CLI with args and returns the process exit code.
func Run(ctx context.Context, args []string, env Env) int {
	root := New(env)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(env.Err, "error:", err)
		return 1
	}
	return 0
}

func (g *globals) client() *client { return newClient(g.server, g.user) }

// callNamed checks that arg is a three-part name, then sends method to
// collection/NAME+suffix (e.g. "/api/v1/tables", "/optimize") and decodes
// the response into out. It returns the parsed name.
func (g *globals) callNamed(cmd *cobra.Command, method, collection, arg, suffix string, out any) (ident.Name, error) {
	n, err := ident.Parse(arg)
	if err != nil {
		return n, err
	}
	return n, g.client().do(cmd.Context(), method, collection+"/"+n.String()+suffix, nil, "", out)
}
