// Package demo generates the order events of the seeds' orders example
// (order_id, customer_id, product, amount, quantity, order_time) for
// `sluice up --demo` and for benchmarks, and declares the demo stream.
package demo

import (
	"context"
	_ "embed"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// OrderSchema is the JSON Schema of an order event.
const OrderSchema = `{
  "type": "object",
  "properties": {
    "order_id":    {"type": "string"},
    "customer_id": {"type": "string"},
    "product":     {"type": "string"},
    "amount":      {"type": "number"},
    "quantity":    {"type": "integer"},
    "order_time":  {"type": "string", "format": "date-time"}
  },
  "required": ["order_id", "customer_id", "amount", "order_time"]
}`

// Names used by the demo.
const (
	Topic       = "orders"
	StreamName  = "main.demo.orders"
	Destination = "main.demo.orders_ingestion"

	// Pipeline is the demo pipeline, run with trigger continuous over
	// Destination; PipelineSQL is its SQL. It writes Silver (validated
	// orders), Revenue (5-minute windows per product) and TopProducts.
	Pipeline    = "main.demo.orders_pipeline"
	Silver      = "main.demo.orders_silver"
	Revenue     = "main.demo.product_revenue_5m"
	TopProducts = "main.demo.top_products"

	// Features is the demo's windowed feature table (FeaturesSpec),
	// computed from Destination and served online; Regulars are customers
	// who order often enough to have features within a minute.
	Features = "main.demo.customer_activity"
	Regulars = 10
)

// FeaturesSpec is the demo's windowed feature table: per customer, the
// orders and spend of the last hour and the products ordered, as of the
// moment they are read, online.
const FeaturesSpec = `name: ` + Features + `
source: ` + Destination + `
entity: {customer_id: value.customer_id}
timestamp: value.order_time
features:
  - {name: orders_1h,      function: count,          window: 1h}
  - {name: spend_1h,       function: sum,            column: value.amount, window: 1h}
  - {name: big_orders_1h,  function: count,          filter: "value.amount >= 400", window: 1h}
  - {name: products_1h,    function: count_distinct, column: value.product, window: 1h}
  - {name: last_product,   function: last,           column: value.product}
ttl: 7d
online: true
`

// FeatureNames are the features of FeaturesSpec as the online API names
// them.
var FeatureNames = []string{Features + ":orders_1h", Features + ":spend_1h", Features + ":big_orders_1h", Features + ":products_1h", Features + ":last_product"}

// PipelineSQL is the demo pipeline (pipeline.sql): the declarative
// pipeline of the seeds' orders example over the demo stream.
//
//go:embed pipeline.sql
var PipelineSQL string

// StreamSpec returns the demo stream's spec (YAML) for a broker at bootstrap.
func StreamSpec(bootstrap string) []byte {
	return fmt.Appendf(nil, `name: %s
source:
  kafka:
    subscribe: %s
connection:
  bootstrap_servers: %s
schema:
  key: {json_schema: {"type": "string"}}
  payload:
    json_schema: %s
ingestion:
  destination: %s
  commit_interval: 2s
`, StreamName, Topic, bootstrap, strconv.Quote(OrderSchema), Destination)
}

var products = []string{"laptop", "phone", "tablet", "monitor", "keyboard", "mouse", "headphones", "camera"}

// Generator makes order events. It is deterministic for a seed and not
// goroutine-safe.
type Generator struct {
	rng *rand.Rand
	seq uint64
	// BadEvery makes every n-th event violate the schema (amount as a
	// string), to show the quarantine; 0 never.
	BadEvery uint64
}

// NewGenerator returns a generator seeded with seed.
func NewGenerator(seed uint64) *Generator {
	return &Generator{rng: rand.New(rand.NewPCG(seed, seed^0x5eed))}
}

// ContinueAfter makes the next order id n+1: a demo restarted over a topic
// that holds n orders continues their numbering, so order ids stay unique.
func (g *Generator) ContinueAfter(n uint64) { g.seq = n }

// Next appends the next event's key (the customer) and JSON value (~200
// bytes) to the given buffers and returns them.
func (g *Generator) Next(now time.Time, key, value []byte) ([]byte, []byte) {
	g.seq++
	cust := g.rng.IntN(10_000)
	if g.rng.IntN(5) == 0 { // a fifth of the orders come from a few regulars
		cust = g.rng.IntN(Regulars)
	}
	key = fmt.Appendf(key, "c%05d", cust)
	amount := float64(g.rng.IntN(50_000)) / 100
	value = fmt.Appendf(value, `{"order_id":"o-%012d","customer_id":"c%05d","product":"%s",`, g.seq, cust, products[g.rng.IntN(len(products))])
	if g.BadEvery > 0 && g.seq%g.BadEvery == 0 {
		value = fmt.Appendf(value, `"amount":"%.2f",`, amount)
	} else {
		value = fmt.Appendf(value, `"amount":%.2f,`, amount)
	}
	value = fmt.Appendf(value, `"quantity":%d,"order_time":"%s","channel":"web","note":"demo order event"}`,
		1+g.rng.IntN(5), now.UTC().Format(time.RFC3339Nano))
	return key, value
}

// Produce sends orders to topic at about rate events per second until ctx
// is cancelled. Produce errors are counted by the client's retries; the
// first error that survives them is returned.
func Produce(ctx context.Context, cl *kgo.Client, topic string, rate float64, g *Generator) error {
	if rate <= 0 {
		return fmt.Errorf("demo: rate must be positive, got %v", rate)
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	perTick := rate / 10
	var owed float64
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		owed += perTick
		for ; owed >= 1; owed-- {
			k, v := g.Next(time.Now(), nil, nil)
			cl.Produce(ctx, &kgo.Record{Topic: topic, Key: k, Value: v}, nil)
		}
	}
}
