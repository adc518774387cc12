package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"sort"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

var _ connector.SequenceWriter = (*Conn)(nil)

// ownedBy is a column a sequence belongs to.
type ownedBy struct {
	table  model.Namespace
	column string
}

// SetSequences sets each sequence the destination has with setval, which
// takes effect at once, outside any transaction: a setval is never rolled
// back, and running it again sets the same value. It never moves a
// sequence back: one whose next value at the destination is already past
// the source's (the application wrote there after a cutover, and a second
// cutover or --sync-sequences ran) is left as it is, since setting it back
// would hand out numbers its rows already hold.
func (c *Conn) SetSequences(ctx context.Context, seqs []connector.Sequence) ([]connector.Sequence, error) {
	if len(seqs) == 0 {
		return nil, nil
	}
	schemas := map[string]bool{}
	for _, s := range seqs {
		schemas[schemaOf(s.Name)] = true
		if s.Owned() {
			schemas[schemaOf(s.Owner)] = true
		}
	}
	names := make([]string, 0, len(schemas))
	for s := range schemas {
		names = append(names, s)
	}
	sort.Strings(names)
	have, err := c.listSequences(ctx, names)
	if err != nil {
		return nil, err
	}
	byName := map[model.Namespace]pgSequence{}
	byOwner := map[ownedBy]pgSequence{}
	for _, p := range have {
		byName[p.seq.Name] = p
		if p.seq.Owned() {
			byOwner[ownedBy{p.seq.Owner, p.seq.Column}] = p
		}
	}
	var missing []connector.Sequence
	var found []seqTarget
	for _, s := range seqs {
		// The owner's column first: a sequence made by a serial or an
		// identity column at the destination may be named otherwise.
		p, ok := byOwner[ownedBy{withSchema(s.Owner), s.Column}]
		if !s.Owned() || !ok {
			p, ok = byName[withSchema(s.Name)]
		}
		if !ok {
			missing = append(missing, s)
			continue
		}
		found = append(found, seqTarget{want: s, at: p})
	}
	if len(found) == 0 {
		return missing, nil
	}
	if err := c.readSequenceStates(ctx, found); err != nil {
		return nil, err
	}
	b := &pgx.Batch{}
	var set []seqTarget
	for _, t := range found {
		if t.ahead() {
			slog.Info("postgres: a sequence is past the source's at the destination; left as it is", "sequence", t.at.seq.Name.String(),
				"destination_next", t.next(t.last, t.called).String(), "source_next", t.next(t.want.Value, t.want.Called).String())
			continue
		}
		set = append(set, t)
		b.Queue(`SELECT setval($1::oid::regclass, $2, $3)`, t.at.oid, t.want.Value, t.want.Called)
	}
	if len(set) == 0 {
		return missing, nil
	}
	res := c.pool.SendBatch(ctx, b)
	defer res.Close()
	for _, t := range set {
		if _, err := res.Exec(); err != nil {
			return nil, c.sequenceError(err, t.want, "set")
		}
	}
	if err := res.Close(); err != nil {
		return nil, c.classify(err, "set sequences")
	}
	return missing, nil
}

// seqTarget is a destination sequence, its state now, and the source's
// state it is to take.
type seqTarget struct {
	want      connector.Sequence
	at        pgSequence
	last, inc int64
	called    bool
}

// next is the value a sequence in state (last, called) hands out next.
func (t seqTarget) next(last int64, called bool) *big.Int {
	n := big.NewInt(last)
	if called {
		n.Add(n, big.NewInt(t.inc))
	}
	return n
}

// ahead tells whether the destination's next value is past the source's
// (or equal: nothing to set), in the sequence's direction.
func (t seqTarget) ahead() bool {
	c := t.next(t.last, t.called).Cmp(t.next(t.want.Value, t.want.Called))
	if t.inc < 0 {
		return c <= 0
	}
	return c >= 0
}

// readSequenceStates reads each target's state at the destination.
func (c *Conn) readSequenceStates(ctx context.Context, ts []seqTarget) error {
	b := &pgx.Batch{}
	for _, t := range ts {
		b.Queue(`SELECT s.last_value, s.is_called, q.seqincrement FROM `+qualified(t.at.seq.Name)+` s, pg_sequence q WHERE q.seqrelid = $1`, t.at.oid)
	}
	res := c.pool.SendBatch(ctx, b)
	defer res.Close()
	for i := range ts {
		if err := res.QueryRow().Scan(&ts[i].last, &ts[i].called, &ts[i].inc); err != nil {
			return c.sequenceError(err, ts[i].want, "read")
		}
	}
	if err := res.Close(); err != nil {
		return c.classify(err, "read sequences")
	}
	return nil
}

// sequenceError names the GRANT a role lacks to read and set a sequence.
func (c *Conn) sequenceError(err error, s connector.Sequence, doing string) error {
	if sqlState(err) == "42501" {
		user := c.cfg.ConnConfig.User
		return &errs.ConfigError{Msg: fmt.Sprintf("%s sequence %s: permission denied for user %q", doing, s.Name, user),
			Fix: fmt.Sprintf("GRANT SELECT, UPDATE ON SEQUENCE %s TO %s", showQualified(s.Name.Schema, s.Name.Table), showIdent(user)), Err: c.scrub.Err(err)}
	}
	return c.classify(fmt.Errorf("%s sequence %s: %w", doing, s.Name, err), doing+" sequences")
}

// withSchema fills in the default schema of a name without one.
func withSchema(ns model.Namespace) model.Namespace {
	if ns == (model.Namespace{}) {
		return ns
	}
	return model.Namespace{Schema: schemaOf(ns), Table: ns.Table}
}
