// Command sluice is the real-time feature platform in one binary. Run
// `sluice up --demo` to start it; `sluice --help` lists the commands.
package main

import (
	"context"
	"os"

	"github.com/sluice-dev/sluice/internal/cli"
)

func main() {
	os.Exit(cli.Run(context.Background(), os.Args[1:], cli.Env{Out: os.Stdout, Err: os.Stderr, In: os.Stdin}))
}
