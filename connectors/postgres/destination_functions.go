package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/model"
)

// A table's definition may call the source's own functions: a default
// (DEFAULT app.next_code()), a generated column, a domain's or a table's
// CHECK, an expression index. Those functions (model.Table.Functions) are
// created here before the table, as pg_dump restores functions before
// tables, with the objects step's rules (destination_objects.go): bodies
// not checked, each after those it needs, a function the destination has
// (by signature) left alone. One this destination cannot create as the
// source has it (its language, its owner, a type it takes) is left to the
// cutover's objects step, which lists it with what to run; until then the
// table is made as when the function is missing (unmadeDefinitions lists
// the defaults and generated columns that call it).

// functionsBefore returns t's functions this destination lacks and will
// create before t, in the order to create them.
func (c *Conn) functionsBefore(ctx context.Context, t *model.Table) ([]*objectPlan, error) {
	if len(t.Functions) == 0 {
		return nil, nil
	}
	var me string
	if err := c.pool.QueryRow(ctx, `SELECT current_user`).Scan(&me); err != nil {
		return nil, c.classify(fmt.Errorf("read the destination's role: %w", err), "read the destination's role")
	}
	plans := make([]*objectPlan, len(t.Functions))
	byID := make(map[string]*objectPlan, len(t.Functions))
	for i, o := range t.Functions {
		p := &objectPlan{Object: o}
		present, err := c.objectExists(ctx, o)
		if err != nil {
			return nil, err
		}
		p.present = present
		if !present {
			if err := c.checkObject(ctx, p, me, true); err != nil {
				return nil, err
			}
			// Created owned by ferry's role, the objects step would find it
			// there and not list its owner: leave it to that step.
			if p.skip == nil && p.unowned != nil {
				p.skip = p.unowned
			}
		}
		plans[i], byID[o.ID] = p, p
	}
	return objectOrder(plans, byID)
}

// createFunctions creates, in one transaction, the functions t's
// definition calls that this destination lacks and can create as the
// source has them.
func (c *Conn) createFunctions(ctx context.Context, t *model.Table) error {
	order, err := c.functionsBefore(ctx, t)
	if err != nil || len(order) == 0 {
		return err
	}
	err = pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL search_path = ''; SET LOCAL check_function_bodies = off`); err != nil {
			return err
		}
		for _, p := range order {
			stmts := append(append([]string{"CREATE SCHEMA IF NOT EXISTS " + quoteIdent(p.Schema), p.Create}, p.Then...), p.owner)
			for _, q := range stmts {
				if q == "" {
					continue
				}
				if _, err := tx.Exec(ctx, q); err != nil {
					return fmt.Errorf("create %s: %w\nthe statement was: %s", p.Object, c.scrub.Err(err), q)
				}
			}
		}
		return nil
	})
	if err != nil {
		return c.classify(fmt.Errorf("table %s calls functions of the source, created before it: %w", t.Namespace, err), "create the functions of "+t.Namespace.String())
	}
	return nil
}

// aheadFunctions are the IDs of t's functions this destination lacks and
// will create before t: not missing for what calls them.
func (c *Conn) aheadFunctions(ctx context.Context, t *model.Table) (map[string]bool, error) {
	order, err := c.functionsBefore(ctx, t)
	if err != nil || len(order) == 0 {
		return nil, err
	}
	out := make(map[string]bool, len(order))
	for _, p := range order {
		out[p.ID] = true
	}
	return out, nil
}
