package cli

import (
	"fmt"
	"log/slog"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/demo"
	"github.com/sluice-dev/sluice/internal/node"
)

func upCmd(env Env) *cobra.Command {
	var o node.Options
	var level string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start sluice: the embedded Kafka broker, ingestion and the REST API",
		Long: `Start sluice in this process: an embedded Kafka-protocol broker on
127.0.0.1:9092 (unless --no-broker), the REST API on 127.0.0.1:8080, and
storage under ./sluice-data. Streams created earlier resume where their
tables say they stopped. Stop with Ctrl-C: streams commit what they read.`,
		Example: `  sluice up --demo                     # also produce demo orders into a demo stream and pipeline
  sluice up --data /var/lib/sluice --http 127.0.0.1:9000
  sluice up --no-broker --broker-addr kafka1:9092   # use an external Kafka`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var lv slog.Level
			if err := lv.UnmarshalText([]byte(level)); err != nil {
				return fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
			}
			logger := slog.New(slog.NewTextHandler(env.Err, &slog.HandlerOptions{Level: lv}))
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			n, err := node.Start(ctx, o, logger)
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Out, "sluice is up: REST API %s, Kafka bootstrap %s, data in %s\n", n.URL(), n.BrokerAddr(), o.DataDir)
			if o.Demo {
				fmt.Fprint(env.Out, demoHelp(n.URL(), n.BrokerAddr()))
			}
			<-ctx.Done()
			logger.Info("shutting down")
			n.Close()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DataDir, "data", "sluice-data", "data directory (catalog, tables, broker log)")
	f.StringVar(&o.BrokerAddr, "broker-addr", "127.0.0.1:9092", "embedded broker listen address, or the external Kafka with --no-broker")
	f.BoolVar(&o.NoBroker, "no-broker", false, "do not start the embedded broker; use the Kafka at --broker-addr")
	f.StringVar(&o.HTTPAddr, "http", "127.0.0.1:8080", "REST API listen address")
	f.BoolVar(&o.Demo, "demo", false, "create a demo stream of order events and a pipeline over it, and feed it")
	f.Float64Var(&o.DemoRate, "demo-rate", 20, "demo events per second")
	f.StringVar(&o.Online, "online", "", "online feature store: empty for the embedded store in the data directory, or a Redis URL, e.g. redis://10.0.0.5:6379/0 or rediss://user:pass@host:6380 (docs/api.md)")
	f.StringVar(&level, "log-level", "info", "log level: debug, info, warn, error")
	return cmd
}

func demoHelp(url, brokerAddr string) string {
	srv := ""
	if url != "http://127.0.0.1:8080" {
		srv = " --server " + url
	}
	lines := []string{
		"",
		"Demo: orders are produced to topic " + demo.Topic + " and ingested into " + demo.Destination + ". Watch them:",
		"  sluice stream get " + demo.StreamName + srv,
		"  sluice table show " + demo.Destination + " --limit 5" + srv,
		"  sluice table show " + demo.Destination + "_quarantine --limit 5" + srv + "   # 1% are malformed on purpose",
		"  kcat -b " + brokerAddr + " -C -t " + demo.Topic + " -c 3 -e                  # any Kafka client works",
		"The pipeline " + demo.Pipeline + " (trigger continuous) validates them into " + demo.Silver + ",",
		"sums them per product in 5-minute windows into " + demo.Revenue + " and ranks products in " + demo.TopProducts + ":",
		"  sluice pipeline status " + demo.Pipeline + srv,
		"  sluice table show " + demo.Silver + " --limit 5" + srv,
		"  sluice table show " + demo.Revenue + srv + "   # a window appears once it has closed, a minute after its end",
		"The windowed feature table " + demo.Features + " keeps each customer's orders and spend of the",
		"last hour, exact as of the moment they are read, in the online store. Serve them as Feast does:",
		"  sluice feature-table get " + demo.Features + srv,
		"  curl -s " + url + "/get-online-features -d '" + demoFeatureRequest() + "'",
		"",
	}
	return strings.Join(lines, "\n")
}

// demoFeatureRequest is a get-online-features request for the demo's
// features of three regular customers, who have some within a minute.
func demoFeatureRequest() string {
	return `{"features": ["` + strings.Join(demo.FeatureNames[:3], `", "`) +
		`"], "entities": {"customer_id": ["c00000", "c00001", "c00002"]}}`
}
