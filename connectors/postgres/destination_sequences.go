package postgres

import (
	"context"
	"fmt"
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
// back, and running it again sets the same value.
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
	byName := map[model.Namespace]uint32{}
	byOwner := map[ownedBy]uint32{}
	for _, p := range have {
		byName[p.seq.Name] = p.oid
		if p.seq.Owned() {
			byOwner[ownedBy{p.seq.Owner, p.seq.Column}] = p.oid
		}
	}
	var missing, found []connector.Sequence
	b := &pgx.Batch{}
	for _, s := range seqs {
		// The owner's column first: a sequence made by a serial or an
		// identity column at the destination may be named otherwise.
		oid, ok := byOwner[ownedBy{withSchema(s.Owner), s.Column}]
		if !s.Owned() || !ok {
			oid, ok = byName[withSchema(s.Name)]
		}
		if !ok {
			missing = append(missing, s)
			continue
		}
		found = append(found, s)
		b.Queue(`SELECT setval($1::oid::regclass, $2, $3)`, oid, s.Value, s.Called)
	}
	if len(found) == 0 {
		return missing, nil
	}
	res := c.pool.SendBatch(ctx, b)
	defer res.Close()
	for _, s := range found {
		if _, err := res.Exec(); err != nil {
			if sqlState(err) == "42501" {
				user := c.cfg.ConnConfig.User
				return nil, &errs.ConfigError{Msg: fmt.Sprintf("set sequence %s: permission denied for user %q", s.Name, user),
					Fix: fmt.Sprintf("GRANT UPDATE ON SEQUENCE %s TO %s", showQualified(s.Name.Schema, s.Name.Table), showIdent(user)), Err: c.scrub.Err(err)}
			}
			return nil, c.classify(fmt.Errorf("set sequence %s to %d: %w", s.Name, s.Value, err), "set sequences")
		}
	}
	if err := res.Close(); err != nil {
		return nil, c.classify(err, "set sequences")
	}
	return missing, nil
}

// withSchema fills in the default schema of a name without one.
func withSchema(ns model.Namespace) model.Namespace {
	if ns == (model.Namespace{}) {
		return ns
	}
	return model.Namespace{Schema: schemaOf(ns), Table: ns.Table}
}
