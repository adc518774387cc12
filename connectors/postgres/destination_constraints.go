package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// Constraints are built at cutover, once changes no longer arrive in
// parallel by key (docs/decisions/2026-12-05-constraints-at-cutover.md).
// Unique indexes are built CONCURRENTLY under a temporary name, so the
// table stays writable, then foreign keys and checks are added NOT VALID
// and validated (which takes no lock that blocks writes), and last one
// transaction drops the non-unique indexes FinishTable built in their
// place and gives the unique ones their names, attached as constraints
// where the source has a constraint: until then nothing is lost if a step
// fails.

var _ connector.ConstraintBuilder = (*Conn)(nil)

// rollbackTimeout bounds the undoing of a failed build, which runs even
// when the cutover was cancelled.
const rollbackTimeout = time.Minute

// pendingConstraint is a constraint the destination lacks, with what this
// build made for it.
type pendingConstraint struct {
	model.Constraint
	// rel is the table, resolved; partitioned when it is a partitioned
	// table, where PostgreSQL refuses CONCURRENTLY and NOT VALID foreign
	// keys.
	rel         string
	partitioned bool
	// validate: the constraint exists NOT VALID (an earlier build stopped
	// between adding and validating it) and only needs validating.
	validate bool
	// temp is the name a unique index is built under.
	temp string
	// parts are, for a unique kind on a partitioned table, its partitions
	// (destination_partitions.go).
	parts []partIndex
}

// BuildConstraints builds the constraints the destination lacks: it looks
// for rows that break them first, then builds unique indexes, foreign keys
// and checks, and on failure drops what it created.
func (c *Conn) BuildConstraints(ctx context.Context, cons []model.Constraint) (connector.ConstraintsBuilt, error) {
	var done connector.ConstraintsBuilt
	var todo []*pendingConstraint
	for _, k := range cons {
		k = portableConstraint(k)
		p, present, err := c.pendingConstraint(ctx, k)
		if err != nil {
			return done, err
		}
		if present {
			done.Present++
			continue
		}
		todo = append(todo, p)
	}
	for _, p := range todo {
		if err := c.findViolation(ctx, p); err != nil {
			return done, err
		}
	}
	if err := c.buildPending(ctx, todo); err != nil {
		return done, err
	}
	done.Built = len(todo)
	return done, nil
}

// pendingConstraint finds whether the destination has k already (a unique
// index by its name on the table, a constraint by its name).
func (c *Conn) pendingConstraint(ctx context.Context, k model.Constraint) (*pendingConstraint, bool, error) {
	if k.Partition.Table != "" {
		// A partition's own: built on the partition, as on a table.
		k.Table, k.Partition = model.PartitionIn(k.Table, k.Partition), model.Namespace{}
	}
	p := &pendingConstraint{Constraint: k, rel: qualified(k.Table)}
	var present, valid bool
	err := c.pool.QueryRow(ctx, `SELECT t.relkind = 'p',
			CASE WHEN $2 = 'unique_index' THEN EXISTS (SELECT 1 FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid
					WHERE i.indrelid = t.oid AND x.relname = $3 AND i.indisunique AND i.indisvalid)
				ELSE EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conrelid = t.oid AND c.conname = $3) END,
			COALESCE((SELECT c.convalidated FROM pg_constraint c WHERE c.conrelid = t.oid AND c.conname = $3), true)
		FROM pg_class t WHERE t.oid = to_regclass($1)`, p.rel, string(k.Kind), k.Name).Scan(&p.partitioned, &present, &valid)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, errs.BadConfig(fmt.Sprintf("constraint %s: table %s does not exist at the destination", k.Name, k.Table),
			"create the table (or leave it out of the flow with --tables) and run ferry cutover again")
	}
	if err != nil {
		return nil, false, c.classify(fmt.Errorf("constraint %s: %w", k, err), "read constraints of "+k.Table.String())
	}
	if present && !valid && strings.Contains(k.Definition, "NOT VALID") {
		valid = true // NOT VALID at the source too
	}
	p.validate = present && !valid
	p.temp = tempIndexName(k)
	if p.partitioned && !present && (k.Kind == model.ConstraintUnique || k.Kind == model.ConstraintUniqueIndex) {
		if p.parts, err = c.partIndexes(ctx, p); err != nil {
			return nil, false, err
		}
	}
	return p, present && valid, nil
}

// tempIndexName is the name a unique index is built under until it takes
// its own: the same for the same constraint, so a build interrupted by a
// crash finds its leftover and drops it.
func tempIndexName(k model.Constraint) string {
	h := sha256.Sum256([]byte(k.Table.String() + "\x00" + k.Name))
	return "ferry_unique_" + hex.EncodeToString(h[:8])
}

// findViolation looks for a row of the destination that breaks p, and
// refuses with the table, the constraint and a key.
func (c *Conn) findViolation(ctx context.Context, p *pendingConstraint) error {
	if strings.HasSuffix(p.Definition, " NOT VALID") {
		return nil // the source holds old rows that break it, too
	}
	var q, what string
	switch p.Kind {
	case model.ConstraintUnique, model.ConstraintUniqueIndex:
		if len(p.Keys) == 0 {
			return nil
		}
		var where []string
		if p.Predicate != "" {
			where = append(where, "("+p.Predicate+")")
		}
		if !p.NullsEqual {
			for _, e := range p.Keys {
				where = append(where, "("+e+") IS NOT NULL")
			}
		}
		q = "SELECT ROW(" + strings.Join(p.Keys, ", ") + ")::text FROM " + p.rel + whereClause(where) +
			" GROUP BY " + strings.Join(p.Keys, ", ") + " HAVING count(*) > 1 LIMIT 1"
		what = "(" + strings.Join(p.Keys, ", ") + ")=%s is held by more than one row"
	case model.ConstraintForeignKey:
		if len(p.Columns) == 0 || len(p.Columns) != len(p.RefColumns) {
			return nil
		}
		var all, some, match []string
		for i, col := range p.Columns {
			all = append(all, "c."+quoteIdent(col)+" IS NOT NULL")
			some = append(some, "c."+quoteIdent(col)+" IS NOT NULL")
			match = append(match, "r."+quoteIdent(p.RefColumns[i])+" = c."+quoteIdent(col))
		}
		cond := "(" + strings.Join(all, " AND ") + " AND NOT EXISTS (SELECT 1 FROM " + qualified(p.RefTable) + " r WHERE " + strings.Join(match, " AND ") + "))"
		if p.MatchFull {
			cond += " OR ((" + strings.Join(some, " OR ") + ") AND NOT (" + strings.Join(all, " AND ") + "))"
		}
		key, err := c.rowKey(ctx, p.rel, "c.")
		if err != nil {
			return err
		}
		cols := make([]string, len(p.Columns))
		for i, col := range p.Columns {
			cols[i] = "c." + quoteIdent(col)
		}
		q = "SELECT " + key + " || ' has (" + strings.ReplaceAll(strings.Join(p.Columns, ", "), "'", "''") + ")=' || ROW(" + strings.Join(cols, ", ") + ")::text FROM " + p.rel + " c WHERE " + cond + " LIMIT 1"
		what = "the row %s, which " + p.RefTable.String() + " does not have"
	case model.ConstraintCheck:
		if p.Check == "" {
			return nil
		}
		key, err := c.rowKey(ctx, p.rel, "c.")
		if err != nil {
			return err
		}
		q = "SELECT " + key + " FROM " + p.rel + " c WHERE NOT (" + p.Check + ") LIMIT 1"
		what = "the row %s fails " + p.Check
	default:
		return nil
	}
	var key string
	err := c.pool.QueryRow(ctx, q).Scan(&key)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return c.classify(fmt.Errorf("table %s: look for rows that break %s: %w", p.Table, p.Name, err), "look for rows that break "+p.Name)
	}
	return errs.BadConfig(fmt.Sprintf("table %s: constraint %s cannot be built: %s", p.Table, p.Name, fmt.Sprintf(what, key)),
		"the destination holds rows the source does not allow (written there directly?): fix or delete them at the destination (ferry verify lists the differences), then run ferry cutover again; nothing was built")
}

func whereClause(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

// rowKey is an expression naming a row of rel for messages: its primary
// key as "(id)=(7)", else its physical position.
func (c *Conn) rowKey(ctx context.Context, rel, alias string) (string, error) {
	var cols []string
	err := c.pool.QueryRow(ctx, `SELECT COALESCE(array_agg(quote_ident(a.attname::text) ORDER BY k.ord), '{}')
		FROM pg_index i, unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
		JOIN pg_attribute a ON a.attnum = k.attnum
		WHERE i.indrelid = to_regclass($1) AND i.indisprimary AND a.attrelid = i.indrelid`, rel).Scan(&cols)
	if err != nil {
		return "", c.classify(fmt.Errorf("read the primary key of %s: %w", rel, err), "read the primary key of "+rel)
	}
	if len(cols) == 0 {
		return quoteLiteral("ctid=") + " || " + alias + "ctid::text", nil
	}
	vals := make([]string, len(cols))
	for i, col := range cols {
		vals[i] = alias + col
	}
	return quoteLiteral("("+strings.Join(cols, ", ")+")=") + " || ROW(" + strings.Join(vals, ", ") + ")::text", nil
}

// buildPending builds todo: unique indexes under their temporary names,
// foreign keys, checks, then the swap that names the unique indexes. On
// failure it drops what it created.
func (c *Conn) buildPending(ctx context.Context, todo []*pendingConstraint) (err error) {
	var created []*pendingConstraint
	defer func() {
		if err != nil {
			if rerr := c.dropCreated(created); rerr != nil {
				err = fmt.Errorf("%w; and dropping what this cutover had built failed: %v", err, rerr)
			}
		}
	}()
	for _, kind := range []model.ConstraintKind{model.ConstraintUnique, model.ConstraintUniqueIndex, model.ConstraintForeignKey, model.ConstraintCheck} {
		for _, p := range todo {
			if p.Kind != kind {
				continue
			}
			if !p.validate {
				created = append(created, p)
			}
			if err := c.buildOne(ctx, p); err != nil {
				return fmt.Errorf("table %s: build constraint %s: %w; fix what the error names and run ferry cutover again (what this cutover built was dropped)",
					p.Table, p.Name, c.classify(err, "build constraint "+p.Name))
			}
		}
	}
	if err := c.nameUniqueIndexes(ctx, todo); err != nil {
		return fmt.Errorf("name the unique indexes: %w; run ferry cutover again (what this cutover built was dropped)", c.classify(err, "name the unique indexes"))
	}
	return nil
}

// buildOne builds one constraint; a unique one under its temporary name.
func (c *Conn) buildOne(ctx context.Context, p *pendingConstraint) error {
	switch p.Kind {
	case model.ConstraintUnique, model.ConstraintUniqueIndex:
		if p.partitioned {
			return c.buildPartIndexes(ctx, p)
		}
		temp := qualified(model.Namespace{Schema: schemaOf(p.Table), Table: p.temp})
		// A leftover of a build that crashed, INVALID or not.
		if _, err := c.pool.Exec(ctx, "DROP INDEX CONCURRENTLY IF EXISTS "+temp); err != nil {
			return err
		}
		_, err := c.pool.Exec(ctx, "CREATE UNIQUE INDEX CONCURRENTLY "+quoteIdent(p.temp)+" ON "+p.rel+" USING "+p.Index)
		return err
	case model.ConstraintForeignKey, model.ConstraintCheck:
		if !p.validate {
			def := p.Definition
			if p.Kind == model.ConstraintForeignKey && p.RefNative != "" {
				def = strings.Replace(def, "REFERENCES "+p.RefNative+"(", "REFERENCES "+qualified(p.RefTable)+"(", 1)
			}
			notValid := !p.partitioned && !strings.HasSuffix(def, "NOT VALID")
			if notValid {
				def += " NOT VALID"
			}
			if _, err := c.pool.Exec(ctx, "ALTER TABLE "+p.rel+" ADD CONSTRAINT "+quoteIdent(p.Name)+" "+def); err != nil {
				return err
			}
			if !notValid {
				return nil
			}
		}
		_, err := c.pool.Exec(ctx, "ALTER TABLE "+p.rel+" VALIDATE CONSTRAINT "+quoteIdent(p.Name))
		return err
	}
	return nil
}

// nameUniqueIndexes, in one transaction, drops the non-unique index
// FinishTable built under each unique index's name and gives the unique
// index that name, as a constraint where the source has one.
func (c *Conn) nameUniqueIndexes(ctx context.Context, todo []*pendingConstraint) error {
	return pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		for _, p := range todo {
			if p.Kind != model.ConstraintUnique && p.Kind != model.ConstraintUniqueIndex {
				continue
			}
			var old string
			err := tx.QueryRow(ctx, `SELECT quote_ident(n.nspname) || '.' || quote_ident(x.relname)
				FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid JOIN pg_namespace n ON n.oid = x.relnamespace
				WHERE i.indrelid = to_regclass($1) AND x.relname = $2 AND NOT i.indisunique`, p.rel, p.Name).Scan(&old)
			switch {
			case err == nil:
				if _, err := tx.Exec(ctx, "DROP INDEX "+old); err != nil {
					return fmt.Errorf("table %s: drop the non-unique index %s: %w", p.Table, p.Name, err)
				}
			case !errors.Is(err, pgx.ErrNoRows):
				return err
			}
			if p.partitioned {
				if err := namePartIndexes(ctx, tx, p); err != nil {
					return fmt.Errorf("table %s: %w", p.Table, err)
				}
				continue
			}
			temp := qualified(model.Namespace{Schema: schemaOf(p.Table), Table: p.temp})
			q := "ALTER INDEX " + temp + " RENAME TO " + quoteIdent(p.Name)
			switch {
			case p.Kind == model.ConstraintUnique:
				q = "ALTER TABLE " + p.rel + " ADD CONSTRAINT " + quoteIdent(p.Name) + " UNIQUE USING INDEX " + quoteIdent(p.temp) + deferrable(p.Definition)
			}
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("table %s: %s: %w", p.Table, q, err)
			}
		}
		return nil
	})
}

// deferrable is the DEFERRABLE clause of a constraint's definition.
func deferrable(def string) string {
	switch {
	case strings.Contains(def, " DEFERRABLE INITIALLY DEFERRED"):
		return " DEFERRABLE INITIALLY DEFERRED"
	case strings.Contains(def, " DEFERRABLE"):
		return " DEFERRABLE"
	}
	return ""
}

// dropCreated drops what a failed build created, last first: foreign keys
// and checks, then the unique indexes under their temporary names (an
// INVALID one a failed CONCURRENTLY left included).
func (c *Conn) dropCreated(created []*pendingConstraint) error {
	ctx, cancel := context.WithTimeout(context.Background(), rollbackTimeout)
	defer cancel()
	var failed []error
	for i := len(created) - 1; i >= 0; i-- {
		p := created[i]
		var q string
		switch p.Kind {
		case model.ConstraintUnique, model.ConstraintUniqueIndex:
			q = "DROP INDEX IF EXISTS " + qualified(model.Namespace{Schema: schemaOf(p.Table), Table: p.temp})
			for _, part := range p.parts {
				if part.leaf {
					q += ", " + qualified(model.Namespace{Schema: schemaOf(part.table), Table: part.temp})
				}
			}
		default:
			q = "ALTER TABLE " + p.rel + " DROP CONSTRAINT IF EXISTS " + quoteIdent(p.Name)
		}
		if _, err := c.pool.Exec(ctx, q); err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", q, c.scrub.Err(err)))
		}
	}
	return errors.Join(failed...)
}
