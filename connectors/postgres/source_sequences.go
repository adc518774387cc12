package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/connector"
)

var _ connector.SequenceReader = (*Conn)(nil)

// pgSequence is a sequence in the catalog: its name, and the column it
// belongs to, if any.
type pgSequence struct {
	oid uint32
	seq connector.Sequence
}

// listSequences reads the sequences of the given schemas from the catalog,
// each with the table column it belongs to: a serial column's sequence
// depends on it automatically (deptype a), an identity column's internally
// (i). Both halves read the catalog this way: the source to list them, the
// destination to find where to set them.
func (c *Conn) listSequences(ctx context.Context, schemas []string) ([]pgSequence, error) {
	rows, err := c.pool.Query(ctx, `SELECT s.oid, n.nspname, s.relname,
			COALESCE(tn.nspname, ''), COALESCE(t.relname, ''), COALESCE(a.attname, '')
		FROM pg_class s JOIN pg_namespace n ON n.oid = s.relnamespace
		LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid
			AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')
		LEFT JOIN pg_class t ON t.oid = d.refobjid
		LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace
		LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
		WHERE s.relkind = 'S' AND n.nspname = ANY($1)
		ORDER BY n.nspname, s.relname`, schemas)
	if err != nil {
		return nil, c.classify(err, "list sequences")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pgSequence, error) {
		var p pgSequence
		err := r.Scan(&p.oid, &p.seq.Name.Schema, &p.seq.Name.Table, &p.seq.Owner.Schema, &p.seq.Owner.Table, &p.seq.Column)
		return p, err
	})
	if err != nil {
		return nil, c.classify(err, "list sequences")
	}
	return out, nil
}

// Sequences lists every sequence of the given schemas with its value, read
// from the sequence itself: pg_sequences shows NULL both for a sequence
// never called and for one the role may not read, and taking the second for
// the first would set the destination back to the start.
func (c *Conn) Sequences(ctx context.Context, schemas []string) ([]connector.Sequence, error) {
	list, err := c.listSequences(ctx, schemas)
	if err != nil || len(list) == 0 {
		return nil, err
	}
	b := &pgx.Batch{}
	for _, p := range list {
		b.Queue(`SELECT last_value, is_called FROM ` + qualified(p.seq.Name))
	}
	res := c.pool.SendBatch(ctx, b)
	defer res.Close()
	out := make([]connector.Sequence, len(list))
	for i, p := range list {
		out[i] = p.seq
		if err := res.QueryRow().Scan(&out[i].Value, &out[i].Called); err != nil {
			return nil, c.classify(err, fmt.Sprintf("read sequence %s", p.seq.Name))
		}
	}
	if err := res.Close(); err != nil {
		return nil, c.classify(err, "read sequences")
	}
	return out, nil
}
