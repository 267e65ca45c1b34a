package main

import (
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// The event stream, after Nexmark's generator (Tucker et al., "NEXMark – A
// Benchmark for Queries over Data Streams"; the Flink/Beam implementation's
// BidGenerator): bids only.
const (
	batchRows = 4096
	// eventsPerSecond of simulated (event) time: dateTime advances 100 µs
	// per event.
	eventsPerSecond = 10_000
	usPerEvent      = 1_000_000 / eventsPerSecond
	// maxDisorder bounds out-of-orderness: an event's time is its slot's
	// time minus up to this much. The queries' watermark delay (5 s) is
	// larger, so no bid is ever late.
	maxDisorder = 2 * time.Second
	// In Nexmark, 3 of every 50 events create an auction and 1 a person;
	// bids go to the 100 auctions in flight (plus 10 ahead), or half of
	// them (HOT_AUCTION_RATIO 2) to the latest "hot" auction.
	auctionsPer50, personsPer50 = 3, 1
	inFlightAuctions            = 100
	auctionIDLead               = 10
	firstAuctionID              = 1000
	firstPersonID               = 1000
	activePeople                = 1000
	// ringBatches batches of random fields are drawn once and repeated
	// with ids and times advanced (see generator); a multiple of 50 events.
	ringBatches = 50
	ringEvents  = ringBatches * batchRows // 204,800 events, 20.48 s
)

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// bidSchema is main.nexmark.bids: Nexmark's Bid.
var bidSchema = arrow.NewSchema([]arrow.Field{
	{Name: "auction", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "bidder", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "price", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "channel", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "url", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "dateTime", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
	{Name: "extra", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

// bidJSONSchema is the stream's payload schema for the same fields.
const bidJSONSchema = `{
  "type": "object",
  "properties": {
    "auction":  {"type": "integer"},
    "bidder":   {"type": "integer"},
    "price":    {"type": "integer"},
    "channel":  {"type": "string"},
    "url":      {"type": "string"},
    "dateTime": {"type": "string", "format": "date-time"},
    "extra":    {"type": "string"}
  },
  "required": ["auction", "bidder", "price", "dateTime"]
}`

// bid is one event, for JSON records and for the tests' oracle.
type bid struct {
	auction, bidder, price int64
	channel, url, extra    string
	micros                 int64 // dateTime, µs since the epoch
}

// generator makes the deterministic bid stream. Drawing random fields
// (and building strings) for every event would cost about as much as the
// queries under test, so it draws them for the first ringEvents events and
// then repeats them, advancing auction and bidder ids and times as the
// stream's clock would: event e = cycle·ringEvents + j is ring event j with
// auction + cycle·(ringEvents·3/50), bidder + cycle·(ringEvents/50), time
// + cycle·ringEvents·100 µs. Emitting a batch then costs three 4096-element
// additions. Not goroutine-safe.
type generator struct {
	mem memory.Allocator
	// The ring, by event.
	auction, bidder, micros []int64 // of cycle 0
	price                   []int64
	channel, url, extra     []string
	// The ring, by batch: columns that do not change between cycles.
	priceArr, channelArr, urlArr, extraArr []arrow.Array
	next                                   int64 // batch number
}

var channels = []string{"Google", "Facebook", "Baidu", "Apple"}

const letters = "abcdefghijklmnopqrstuvwxyz"

func newGenerator(mem memory.Allocator) *generator {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	g := &generator{mem: mem}
	rng := rand.New(rand.NewPCG(42, 0x6e65786d61726b))
	word := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = letters[rng.IntN(len(letters))]
		}
		return string(b)
	}
	for e := range int64(ringEvents) {
		lastAuction := firstAuctionID + e*auctionsPer50/50
		var auction int64
		if rng.IntN(2) > 0 {
			auction = lastAuction // the hot auction
		} else {
			auction = lastAuction - inFlightAuctions + rng.Int64N(inFlightAuctions+1+auctionIDLead)
		}
		lastPerson := firstPersonID + e*personsPer50/50
		var bidder int64
		if rng.IntN(4) > 0 {
			bidder = lastPerson/4*4 + 1 // hot bidders
		} else {
			bidder = lastPerson - activePeople + rng.Int64N(activePeople)
		}
		// Nexmark's nextPrice: 10^(6u)·100, i.e. 100 to 100,000,000.
		price := int64(math.Round(math.Pow(10, rng.Float64()*6) * 100))
		var ch, url string
		base := "https://www.nexmark.com/" + word(5) + "/" + word(5) + "/" + word(5) + "/item.htm?query=1"
		if c := rng.IntN(10); c < len(channels) {
			ch, url = channels[c], base+"&channel_id="+strconv.Itoa(c)
		} else {
			n := rng.IntN(10_000)
			ch, url = "channel-"+strconv.Itoa(n), base+"&channel_id="+strconv.Itoa(n)
		}
		micros := t0.UnixMicro() + e*usPerEvent - rng.Int64N(maxDisorder.Microseconds())
		g.auction, g.bidder, g.price = append(g.auction, auction), append(g.bidder, bidder), append(g.price, price)
		g.channel, g.url, g.extra = append(g.channel, ch), append(g.url, url), append(g.extra, word(rng.IntN(41)))
		g.micros = append(g.micros, micros)
	}
	for b := range ringBatches {
		lo, hi := b*batchRows, (b+1)*batchRows
		g.priceArr = append(g.priceArr, int64Array(g.price[lo:hi]))
		g.channelArr = append(g.channelArr, stringArray(mem, g.channel[lo:hi]))
		g.urlArr = append(g.urlArr, stringArray(mem, g.url[lo:hi]))
		g.extraArr = append(g.extraArr, stringArray(mem, g.extra[lo:hi]))
	}
	return g
}

// event returns event e of the stream.
func (g *generator) event(e int64) bid {
	cycle, j := e/ringEvents, e%ringEvents
	return bid{
		auction: g.auction[j] + cycle*ringEvents*auctionsPer50/50,
		bidder:  g.bidder[j] + cycle*ringEvents*personsPer50/50,
		price:   g.price[j],
		channel: g.channel[j], url: g.url[j], extra: g.extra[j],
		micros: g.micros[j] + cycle*ringEvents*usPerEvent,
	}
}

// batch returns the next batchRows events as a batch (owned by the caller).
func (g *generator) batch() arrow.RecordBatch {
	n := g.next
	g.next++
	cycle, b := n/ringBatches, int(n%ringBatches)
	lo, hi := b*batchRows, (b+1)*batchRows
	shifted := func(src []int64, by int64) arrow.Array {
		out := make([]int64, len(src))
		for i, v := range src {
			out[i] = v + by
		}
		return int64Array(out)
	}
	auction := shifted(g.auction[lo:hi], cycle*ringEvents*auctionsPer50/50)
	bidder := shifted(g.bidder[lo:hi], cycle*ringEvents*personsPer50/50)
	ts := shifted(g.micros[lo:hi], cycle*ringEvents*usPerEvent)
	tsArr := array.NewData(bidSchema.Field(5).Type, batchRows, ts.Data().Buffers(), nil, 0, 0)
	tsCol := array.MakeFromData(tsArr)
	tsArr.Release()
	ts.Release()
	cols := []arrow.Array{auction, bidder, g.priceArr[b], g.channelArr[b], g.urlArr[b], tsCol, g.extraArr[b]}
	rec := array.NewRecordBatch(bidSchema, cols, batchRows)
	auction.Release()
	bidder.Release()
	tsCol.Release()
	return rec
}

// appendJSON appends bid b as the JSON record the stream ingests.
func appendJSON(dst []byte, b bid) []byte {
	dst = append(dst, `{"auction":`...)
	dst = strconv.AppendInt(dst, b.auction, 10)
	dst = append(dst, `,"bidder":`...)
	dst = strconv.AppendInt(dst, b.bidder, 10)
	dst = append(dst, `,"price":`...)
	dst = strconv.AppendInt(dst, b.price, 10)
	dst = append(dst, `,"channel":"`...)
	dst = append(dst, b.channel...)
	dst = append(dst, `","url":"`...)
	dst = append(dst, b.url...)
	dst = append(dst, `","dateTime":"`...)
	dst = time.UnixMicro(b.micros).UTC().AppendFormat(dst, "2006-01-02T15:04:05.000000Z07:00")
	dst = append(dst, `","extra":"`...)
	dst = append(dst, b.extra...)
	return append(dst, `"}`...)
}

// int64Array wraps v (not copied) as an Int64 array without nulls.
func int64Array(v []int64) arrow.Array {
	buf := memory.NewBufferBytes(arrow.Int64Traits.CastToBytes(v))
	d := array.NewData(arrow.PrimitiveTypes.Int64, len(v), []*memory.Buffer{nil, buf}, nil, 0, 0)
	defer d.Release()
	return array.MakeFromData(d)
}

func stringArray(mem memory.Allocator, v []string) arrow.Array {
	b := array.NewStringBuilder(mem)
	defer b.Release()
	b.AppendValues(v, nil)
	return b.NewArray()
}
