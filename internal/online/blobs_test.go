package online_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	. "github.com/sluice-dev/sluice/internal/online"
)

// addBlob is an Apply that adds n to a blob holding a little-endian
// uint64 counter.
func addBlob(n uint64) func([]byte) ([]byte, error) {
	return func(old []byte) ([]byte, error) {
		var c uint64
		if old != nil {
			if len(old) != 8 {
				return nil, fmt.Errorf("blob of %d bytes", len(old))
			}
			c = binary.LittleEndian.Uint64(old)
		}
		return binary.LittleEndian.AppendUint64(nil, c+n), nil
	}
}

func counter(t *testing.T, b []byte) uint64 {
	t.Helper()
	if b == nil {
		return 0
	}
	if len(b) != 8 {
		t.Fatalf("blob of %d bytes", len(b))
	}
	return binary.LittleEndian.Uint64(b)
}

func runBlobConformance(t *testing.T, open func(t *testing.T) Store) {
	ctx := context.Background()
	const tbl = "main.features.tiles"

	t.Run("ReadModifyWrite", func(t *testing.T) {
		s := open(t)
		got, err := s.GetBlobs(ctx, tbl, [][]byte{[]byte("a")}, time.Time{})
		if err != nil || got[0] != nil {
			t.Fatalf("absent blob: %v %v", got, err)
		}
		// Two updates of one key in one call apply in order.
		if err := s.UpdateBlobs(ctx, tbl, []BlobUpdate{
			{Key: []byte("a"), Apply: addBlob(2)},
			{Key: []byte("b"), Apply: addBlob(5)},
			{Key: []byte("a"), Apply: addBlob(3)},
		}); err != nil {
			t.Fatal(err)
		}
		got, err = s.GetBlobs(ctx, tbl, [][]byte{[]byte("a"), []byte("b"), []byte("c")}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if counter(t, got[0]) != 5 || counter(t, got[1]) != 5 || got[2] != nil {
			t.Fatalf("blobs %v", got)
		}
		// Blobs of another table and rows of the same table are apart.
		other, err := s.GetBlobs(ctx, "main.features.other", [][]byte{[]byte("a")}, time.Time{})
		if err != nil || other[0] != nil {
			t.Fatalf("other table: %v %v", other, err)
		}
		mustWrite(t, s, Table{Name: tbl}, row("a", 1, 0, "x", Int64(1)))
		got, _ = s.GetBlobs(ctx, tbl, [][]byte{[]byte("a")}, time.Time{})
		if counter(t, got[0]) != 5 {
			t.Fatalf("blob after a row write: %v", got)
		}
		// DeleteTable removes blobs too.
		if err := s.DeleteTable(ctx, tbl); err != nil {
			t.Fatal(err)
		}
		got, _ = s.GetBlobs(ctx, tbl, [][]byte{[]byte("a"), []byte("b")}, time.Time{})
		if got[0] != nil || got[1] != nil {
			t.Fatalf("blobs after DeleteTable: %v", got)
		}
		// ... and from what the next update starts from.
		if err := s.UpdateBlobs(ctx, tbl, []BlobUpdate{{Key: []byte("a"), Apply: addBlob(1)}}); err != nil {
			t.Fatal(err)
		}
		got, _ = s.GetBlobs(ctx, tbl, [][]byte{[]byte("a")}, time.Time{})
		if counter(t, got[0]) != 1 {
			t.Fatalf("blob updated after DeleteTable to %d, want 1", counter(t, got[0]))
		}
	})

	t.Run("ApplyError", func(t *testing.T) {
		s := open(t)
		boom := errors.New("boom")
		if err := s.UpdateBlobs(ctx, tbl, []BlobUpdate{{Key: []byte("a"), Apply: addBlob(10)}}); err != nil {
			t.Fatal(err)
		}
		err := s.UpdateBlobs(ctx, tbl, []BlobUpdate{
			{Key: []byte("a"), Apply: addBlob(2)},
			{Key: []byte("b"), Apply: func([]byte) ([]byte, error) { return nil, boom }},
		})
		if !errors.Is(err, boom) {
			t.Fatalf("err %v, want boom", err)
		}
		// The failed call's other update is not what the next one sees
		// (for Redis it may have been applied: updates are per blob).
		if err := s.UpdateBlobs(ctx, tbl, []BlobUpdate{{Key: []byte("a"), Apply: addBlob(1)}}); err != nil {
			t.Fatal(err)
		}
		got, _ := s.GetBlobs(ctx, tbl, [][]byte{[]byte("a")}, time.Time{})
		_, atomicCall := s.(*Embedded) // one batch per call
		if n := counter(t, got[0]); n != 11 && (atomicCall || n != 13) {
			t.Fatalf("blob after a failed call and an update: %d, want 11 (or, for Redis, 13: the failed call's first update may land)", n)
		}
		if err := s.UpdateBlobs(ctx, tbl, []BlobUpdate{{Key: nil, Apply: addBlob(1)}}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("empty key: %v", err)
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		s := open(t)
		past := time.Now().Add(-time.Minute)
		future := time.Now().Add(time.Hour)
		if err := s.UpdateBlobs(ctx, tbl, []BlobUpdate{
			{Key: []byte("old"), Apply: addBlob(1), ExpireAt: past},
			{Key: []byte("new"), Apply: addBlob(1), ExpireAt: future},
		}); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetBlobs(ctx, tbl, [][]byte{[]byte("old"), []byte("new")}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if got[0] != nil || counter(t, got[1]) != 1 {
			t.Fatalf("blobs %v", got)
		}
		// An expired blob reads as absent to Apply as well.
		if err := s.UpdateBlobs(ctx, tbl, []BlobUpdate{{Key: []byte("old"), Apply: addBlob(7), ExpireAt: future}}); err != nil {
			t.Fatal(err)
		}
		got, _ = s.GetBlobs(ctx, tbl, [][]byte{[]byte("old")}, time.Time{})
		if counter(t, got[0]) != 7 {
			t.Fatalf("expired blob updated to %d, want 7", counter(t, got[0]))
		}
	})

	t.Run("ConcurrentWriters", func(t *testing.T) {
		s := open(t)
		const writers, rounds = 4, 25
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range rounds {
					if err := s.UpdateBlobs(ctx, tbl, []BlobUpdate{{Key: []byte("n"), Apply: addBlob(1)}}); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		got, _ := s.GetBlobs(ctx, tbl, [][]byte{[]byte("n")}, time.Time{})
		if c := counter(t, got[0]); c != writers*rounds {
			t.Fatalf("counter %d after %d increments: an update was lost", c, writers*rounds)
		}
	})
}
