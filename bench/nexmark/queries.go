package main

import (
	"fmt"
	"strings"
)

// bidsTable is the table the queries read from memory. From the broker they
// read a temporary view of the same name's columns over the stream's
// ingestion table (see brokerSQL).
const bidsTable = "main.nexmark.bids"

// Watermark delay of the windowed queries; larger than maxDisorder.
const wmDelaySeconds = 5

// queries by name. {src} is the table or view the query streams from.
var queries = map[string]string{
	// (a) Nexmark q1 (currency conversion: price * 0.908) over the rows of
	// q2's kind of selection (auction % 123 = 0) widened by a price
	// filter: ~34% of bids pass (price > 1,000,000 for a third of them).
	"a": `CREATE OR REFRESH STREAMING TABLE main.nexmark.q_a AS
SELECT auction, bidder, price * 0.908 AS price_eur, dateTime
FROM STREAM({src})
WHERE auction % 123 = 0 OR price > 1000000;`,

	// (b) Nexmark q5's inner count and q7's max, per auction: 10-second
	// tumbling windows, appended once the watermark passes their end.
	"b": `CREATE OR REFRESH STREAMING TABLE main.nexmark.q_b AS
SELECT window(dateTime, '10 seconds') AS w, auction, count(*) AS bids, max(price) AS max_price
FROM STREAM({src}) WATERMARK dateTime DELAY OF INTERVAL {delay} SECONDS
GROUP BY window(dateTime, '10 seconds'), auction;`,

	// (c) Nexmark q5's sliding count: 10-second windows every 2 seconds,
	// so each bid counts in 5 windows.
	"c": `CREATE OR REFRESH STREAMING TABLE main.nexmark.q_c AS
SELECT window(dateTime, '10 seconds', '2 seconds') AS w, auction, count(*) AS bids
FROM STREAM({src}) WATERMARK dateTime DELAY OF INTERVAL {delay} SECONDS
GROUP BY window(dateTime, '10 seconds', '2 seconds'), auction;`,
}

var queryNames = []string{"a", "b", "c"}

// querySQL returns query q over the table (or view) src.
func querySQL(q, src string) (string, error) {
	text, ok := queries[q]
	if !ok {
		return "", fmt.Errorf("unknown query %q (a, b or c)", q)
	}
	text = strings.ReplaceAll(text, "{src}", src)
	return strings.ReplaceAll(text, "{delay}", fmt.Sprint(wmDelaySeconds)), nil
}

// brokerSQL is query q as a pipeline over the stream's ingestion table: a
// temporary view gives the payload's fields their plain names.
func brokerSQL(q string) (string, error) {
	text, err := querySQL(q, "bids")
	if err != nil {
		return "", err
	}
	return "CREATE TEMPORARY VIEW bids AS SELECT value.* FROM STREAM(" + ingestionTable + ");\n" + text, nil
}

// expectedRows computes query q's output row count over events [0, n) of
// g's stream, the straightforward way (the tests' oracle and the broker
// child's check). For the windowed queries no bid is late (maxDisorder <
// the delay), so every window whose end is at or before the final
// watermark, max(dateTime) − delay, has been emitted, and no other.
func expectedRows(g *generator, q string, n int64) int64 {
	switch q {
	case "a":
		var rows int64
		for e := range n {
			b := g.event(e)
			if b.auction%123 == 0 || b.price > 1_000_000 {
				rows++
			}
		}
		return rows
	case "b", "c":
		size, slide := int64(10_000_000), int64(10_000_000)
		if q == "c" {
			slide = 2_000_000
		}
		var maxTs int64
		type group struct{ start, auction int64 }
		groups := map[group]bool{}
		for e := range n {
			b := g.event(e)
			maxTs = max(maxTs, b.micros)
			// Windows [start, start+size) with start a multiple of slide
			// containing the time (times here are positive).
			last := b.micros - b.micros%slide
			for s := last; s > b.micros-size; s -= slide {
				groups[group{s, b.auction}] = true
			}
		}
		wm := maxTs - wmDelaySeconds*1_000_000
		var rows int64
		for k := range groups {
			if k.start+size <= wm {
				rows++
			}
		}
		return rows
	}
	panic("unknown query " + q)
}
