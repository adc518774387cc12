package postgres_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/ferrydb/ferry/model"
)

// TestBatchesCarryTheTransactionID: each batch of the stream carries the
// xid of its source transaction (pgoutput's BEGIN), which event
// destinations send as Debezium's source.txId.
func TestBatchesCarryTheTransactionID(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	mustExec(t, src, `CREATE TABLE items (id int PRIMARY KEY)`)
	c := open(t, p.srcURL())
	tables, t0 := streamFlow(t, c, "txid")
	ctx := context.Background()
	tx, err := src.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var xid int64
	if err := tx.QueryRow(ctx, `INSERT INTO items VALUES (1), (2) RETURNING txid_current()`).Scan(&xid); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := streamUntil(t, c, "txid", tables, t0, func(bs []*model.ChangeBatch) bool { return len(changesOf(bs)) >= 2 })
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range got {
		if len(b.Changes) > 0 && b.TxID != strconv.FormatInt(xid, 10) {
			t.Errorf("batch at %s: TxID %q, want the transaction's xid %d", b.Position, b.TxID, xid)
		}
	}
}
