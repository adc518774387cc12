package fake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// generatedRowsSum is the SHA-256 of the rows and changes the source below
// generates, each value written with its Go type. It pins the fake source's
// values: the engine benchmarks measure the engine against the same rows,
// and a faster generator must not be a cheaper one (issue 18).
const generatedRowsSum = "f0abe2e3b39d6514fd4b2ca44a4cd897be24d1639827fb62cedeb175fcb5bc8f"

func TestGeneratedRowsArePinned(t *testing.T) {
	s := open(t, "fake://?tables=2&rows=3000&width=40&changes=2000&seed=7")
	ctx := context.Background()
	tables, err := s.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	write := func(r model.Row) {
		for _, v := range r {
			fmt.Fprintf(h, "%T:%v|", v, v)
		}
		h.Write([]byte{'\n'})
	}
	rows := 0
	for _, tb := range tables {
		err := s.ReadPartition(ctx, tb, model.Partition{ID: "all"}, "", func(b *model.RowBatch) error {
			for _, r := range b.Rows {
				write(r)
				rows++
			}
			fmt.Fprintf(h, "cursor %s\n", b.Cursor)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	changes := 0
	err = s.StreamChanges(ctx, tables, "0", connector.StreamOptions{}, func(_ context.Context, b *model.ChangeBatch) error {
		for _, c := range b.Changes {
			fmt.Fprintf(h, "%d %s ", c.Op, c.Table)
			write(c.Key)
			write(c.Row)
			changes++
		}
		if changes >= 2000 {
			return errEnough
		}
		return nil
	})
	if err != errEnough {
		t.Fatal(err)
	}
	if rows != 6000 || changes != 2000 {
		t.Fatalf("read %d rows and %d changes, want 6000 and 2000", rows, changes)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != generatedRowsSum {
		t.Errorf("the generated rows' checksum is %s, want %s: the fake source's values changed", got, generatedRowsSum)
	}
}
