package node_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ackedRecord is a record the broker acknowledged.
type ackedRecord struct {
	partition int32
	offset    int64
	valid     bool
	id        string
	value     string
}

// chaosProducer writes batches of records to a topic from its own
// goroutine, one batch a tick, while the test kills and restarts the
// process it produces to, and records what the broker acknowledged. Its
// methods are safe for concurrent use.
type chaosProducer struct {
	firstAck chan struct{} // closed once a first batch is acknowledged
	quit     chan struct{}
	done     chan struct{}

	mu     sync.Mutex
	acked  []ackedRecord
	failed int
	err    error
}

// producerOptions say what a chaosProducer writes and how.
type producerOptions struct {
	every   time.Duration // between two batches
	timeout time.Duration // for producing one batch
	client  []kgo.Opt     // besides the seed broker and the topic
	// batch returns the next batch and, for each of its records, its id
	// and validity, recorded once the record is acknowledged.
	batch func() ([]*kgo.Record, []ackedRecord)
	// tolerateFailures goes on after a batch fails: the failure is counted,
	// its records may or may not be in the topic, and the next batch goes
	// on with a new client, so that nothing of the failed one is retried
	// behind it. Without it, the first failure stops the producer and stop
	// returns it.
	tolerateFailures bool
}

func startChaosProducer(t *testing.T, addr, topic string, o producerOptions) *chaosProducer {
	t.Helper()
	opts := append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic)}, o.client...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	p := &chaosProducer{firstAck: make(chan struct{}), quit: make(chan struct{}), done: make(chan struct{})}
	go p.run(cl, opts, o)
	t.Cleanup(func() { p.stop() })
	return p
}

func (p *chaosProducer) run(cl *kgo.Client, opts []kgo.Opt, o producerOptions) {
	defer close(p.done)
	defer func() { cl.Close() }()
	tick := time.NewTicker(o.every)
	defer tick.Stop()
	acked := false
	for {
		select {
		case <-p.quit:
			return
		case <-tick.C:
		}
		recs, meta := o.batch()
		ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
		err := cl.ProduceSync(ctx, recs...).FirstErr()
		cancel()
		p.mu.Lock()
		switch {
		case err == nil:
			for i, r := range recs {
				a := meta[i]
				a.partition, a.offset, a.value = r.Partition, r.Offset, string(r.Value)
				p.acked = append(p.acked, a)
			}
		case o.tolerateFailures:
			p.failed++
		default:
			p.err = fmt.Errorf("producing record %s: %w", meta[len(meta)-1].id, err)
		}
		p.mu.Unlock()
		switch {
		case err == nil && !acked:
			acked = true
			close(p.firstAck)
		case err != nil && !o.tolerateFailures:
			return
		case err != nil:
			cl.Close()
			if cl, err = kgo.NewClient(opts...); err != nil {
				panic(err) // only bad options fail here, and they did not the first time
			}
		}
	}
}

// count returns how many records have been acknowledged so far.
func (p *chaosProducer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.acked)
}

// failures returns how many batches have failed so far.
func (p *chaosProducer) failures() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed
}

// stop stops producing and returns every acknowledged record, and the
// failure that stopped the producer before, if any.
func (p *chaosProducer) stop() ([]ackedRecord, error) {
	select {
	case <-p.quit:
	default:
		close(p.quit)
	}
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acked, p.err
}
