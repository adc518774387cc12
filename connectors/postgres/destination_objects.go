package postgres

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// Functions, views, materialized views and triggers are created at
// cutover, after the drain and the constraints, in one transaction: a
// failure leaves none of them. Each is created after the objects it
// depends on; triggers come last among equals, and since the flow applies
// nothing any more, they never fire for a row it wrote. Function bodies
// are not checked at creation (check_function_bodies = off, as pg_dump
// restores them): a SQL function may name a view created after it.

var _ connector.ObjectBuilder = (*Conn)(nil)

// objectPlan is what BuildObjects decided for one object.
type objectPlan struct {
	model.Object
	present bool
	// skip says why it is not created (nil to create it); owner is the
	// ALTER ... OWNER TO to run after creating it ("" for none).
	skip  *connector.ObjectIssue
	owner string
	// unowned: it is created owned by ferry's role, not the source's.
	unowned *connector.ObjectIssue
}

// BuildObjects creates the objects the destination lacks, in dependency
// order, in one transaction.
func (c *Conn) BuildObjects(ctx context.Context, objs []model.Object) (connector.ObjectsBuilt, error) {
	done := connector.ObjectsBuilt{Created: map[model.ObjectKind]int{}}
	var me string
	if err := c.pool.QueryRow(ctx, `SELECT current_user`).Scan(&me); err != nil {
		return done, c.classify(fmt.Errorf("read the destination's role: %w", err), "read the destination's role")
	}
	plans := make([]*objectPlan, len(objs))
	byID := make(map[string]*objectPlan, len(objs))
	for i, o := range objs {
		p := &objectPlan{Object: o}
		present, err := c.objectExists(ctx, o)
		if err != nil {
			return done, err
		}
		p.present = present
		if present {
			done.Present++
		} else if err := c.checkObject(ctx, p, me, true); err != nil {
			return done, err
		}
		plans[i], byID[o.ID] = p, p
	}
	order, err := objectOrder(plans, byID)
	if err != nil {
		return done, err
	}
	for _, p := range plans {
		if p.skip != nil {
			done.Issues = append(done.Issues, *p.skip)
		} else if p.unowned != nil {
			done.Issues = append(done.Issues, *p.unowned)
		}
	}
	if len(order) == 0 {
		return done, nil
	}
	err = pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL search_path = ''; SET LOCAL check_function_bodies = off`); err != nil {
			return err
		}
		for _, p := range order {
			for _, q := range append(append([]string{p.Create}, p.Then...), p.owner) {
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
		err = fmt.Errorf("%w\nnothing of this step was created; fix the cause at the destination (or at the source) and run ferry cutover again", c.scrub.Err(err))
		if lostConnection(err) {
			err = errs.Unavailable(err) // the engine waits and runs the step again
		}
		return connector.ObjectsBuilt{Created: map[model.ObjectKind]int{}}, err
	}
	for _, p := range order {
		done.Created[p.Kind]++
	}
	return done, nil
}

// objectExists tells whether the destination has o already, by its ID.
func (c *Conn) objectExists(ctx context.Context, o model.Object) (bool, error) {
	var q string
	args := []any{o.ID}
	switch o.Kind {
	case model.ObjectFunction, model.ObjectProcedure, model.ObjectAggregate:
		q = `SELECT to_regprocedure($1) IS NOT NULL`
	case model.ObjectView:
		q = `SELECT EXISTS (SELECT 1 FROM pg_class WHERE oid = to_regclass($1) AND relkind = 'v')`
	case model.ObjectMaterializedView:
		q = `SELECT EXISTS (SELECT 1 FROM pg_class WHERE oid = to_regclass($1) AND relkind = 'm')`
	case model.ObjectTrigger:
		q = `SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname = $2)`
		name, _, _ := strings.Cut(o.ID, " ON ")
		args = []any{qualified(o.Table), unquoteIdent(name)}
	default:
		return false, nil
	}
	var ok bool
	if err := c.pool.QueryRow(ctx, q, args...).Scan(&ok); err != nil && !noSuchSchema(err) {
		return false, c.classify(fmt.Errorf("look for %s at the destination: %w", o, err), "look for "+o.String())
	}
	return ok, nil
}

// noSuchSchema tells an error of to_regprocedure or to_regtype over a name
// whose types' schema does not exist (PostgreSQL before 16 raises it where
// it returns NULL for a missing object): the object is not there.
func noSuchSchema(err error) bool {
	return sqlState(err) == "3F000"
}

// unquoteIdent undoes quote_ident.
func unquoteIdent(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return strings.ReplaceAll(s[1:len(s)-1], `""`, `"`)
	}
	return s
}

// CheckObjects lists, before a flow (ferry plan), the objects the
// destination would not create as the source has them at cutover for want
// of something the flow does not bring: an owner role or a language. The
// tables, functions and types they use are checked at cutover, when the
// flow has created them.
func (c *Conn) CheckObjects(ctx context.Context, objs []model.Object) ([]connector.ObjectIssue, error) {
	var me string
	if err := c.pool.QueryRow(ctx, `SELECT current_user`).Scan(&me); err != nil {
		return nil, c.classify(fmt.Errorf("read the destination's role: %w", err), "read the destination's role")
	}
	var out []connector.ObjectIssue
	for _, o := range objs {
		present, err := c.objectExists(ctx, o)
		if err != nil || present {
			if err != nil {
				return nil, err
			}
			continue
		}
		p := &objectPlan{Object: o}
		if err := c.checkObject(ctx, p, me, false); err != nil {
			return nil, err
		}
		if p.skip != nil {
			out = append(out, *p.skip)
		} else if p.unowned != nil {
			out = append(out, *p.unowned)
		}
	}
	return out, nil
}

// checkObject finds what p needs that the destination lacks: a language,
// its owner, and with used a table, a function or type. What makes it
// impossible to create as the source has it sets p.skip.
func (c *Conn) checkObject(ctx context.Context, p *objectPlan, me string, used bool) error {
	skip := func(problem, fix string) {
		if p.skip == nil {
			p.skip = &connector.ObjectIssue{Object: p.Object.String(), Problem: problem, Fix: fix}
		}
	}
	if p.Create == "" {
		skip("ferry cannot read its definition ("+string(p.Kind)+"s are not carried)",
			fmt.Sprintf("create it at the destination yourself: pg_dump --schema-only --schema=%s of the source prints its definition", showIdent(p.Schema)))
		return nil
	}
	var langOK, langAvailable bool
	if p.Language != "" {
		err := c.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_language WHERE lanname = $1),
			EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = $1)`, p.Language).Scan(&langOK, &langAvailable)
		if err != nil {
			return c.classify(fmt.Errorf("look for language %s at the destination: %w", p.Language, err), "look for languages")
		}
		if !langOK {
			fix := "CREATE EXTENSION " + showIdent(p.Language) + " at the destination, then run ferry cutover again"
			if !langAvailable {
				fix = "install language " + p.Language + " on the destination server (its package), then CREATE EXTENSION " + showIdent(p.Language) + " and run ferry cutover again"
			}
			skip("its language "+p.Language+" is not installed at the destination", fix)
		}
	}
	for _, t := range p.Tables {
		if !used {
			break
		}
		var ok bool
		if err := c.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, qualified(t)).Scan(&ok); err != nil {
			return c.classify(fmt.Errorf("look for %s at the destination: %w", t, err), "look for tables")
		}
		if !ok {
			skip("it uses "+t.String()+", which the destination lacks",
				"add "+t.String()+" to the flow (--tables) or create it at the destination, then run ferry cutover again")
		}
	}
	for _, u := range p.Uses {
		if !used {
			break
		}
		q := `SELECT to_regtype($1) IS NOT NULL`
		if u.Kind == "function" {
			q = `SELECT to_regprocedure($1) IS NOT NULL`
		}
		var ok bool
		if err := c.pool.QueryRow(ctx, q, u.Name).Scan(&ok); err != nil && !noSuchSchema(err) {
			return c.classify(fmt.Errorf("look for %s %s at the destination: %w", u.Kind, u.Name, err), "look for "+u.Kind+"s")
		}
		if !ok {
			skip("it uses "+u.Kind+" "+u.Name+", which the destination lacks",
				"create "+u.Kind+" "+u.Name+" at the destination (or the extension that brings it), then run ferry cutover again")
		}
	}
	if p.Owner == "" || p.Owner == me {
		return nil
	}
	var exists, member bool
	err := c.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1),
		COALESCE((SELECT pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles WHERE rolname = $1), false)`, p.Owner).Scan(&exists, &member)
	if err != nil {
		return c.classify(fmt.Errorf("look for role %s at the destination: %w", p.Owner, err), "look for roles")
	}
	switch {
	case member:
		p.owner = "ALTER " + ownerKeyword(p.Kind) + " " + p.ID + " OWNER TO " + quoteIdent(p.Owner)
	case p.SecurityDefiner:
		// Owned by ferry's role, it would run with that role's rights.
		is := ownerIssue(p, me, exists)
		p.skip = &is
	default:
		is := ownerIssue(p, me, exists)
		p.unowned = &is
	}
	return nil
}

// ownerKeyword is the object type ALTER ... OWNER TO names.
func ownerKeyword(k model.ObjectKind) string {
	switch k {
	case model.ObjectMaterializedView:
		return "MATERIALIZED VIEW"
	case model.ObjectAggregate:
		return "AGGREGATE"
	}
	return strings.ToUpper(string(k))
}

// ownerIssue says that p's owner cannot be given it at the destination.
func ownerIssue(p *objectPlan, me string, roleExists bool) connector.ObjectIssue {
	alter := "ALTER " + ownerKeyword(p.Kind) + " " + p.ID + " OWNER TO " + showIdent(p.Owner)
	is := connector.ObjectIssue{Object: p.Object.String(), Created: !p.SecurityDefiner}
	if roleExists {
		is.Problem = "its owner " + p.Owner + " is a role ferry's role " + me + " is not a member of"
	} else {
		is.Problem = "its owner " + p.Owner + " does not exist at the destination"
	}
	if p.SecurityDefiner {
		is.Problem += "; a SECURITY DEFINER function owned by another role would run with that role's rights"
		create := ""
		if !roleExists {
			create = "CREATE ROLE " + showIdent(p.Owner) + "; "
		}
		is.Fix = create + "GRANT " + showIdent(p.Owner) + " TO " + showIdent(me) + " at the destination, then run ferry cutover again"
		return is
	}
	is.Problem += "; it is owned by " + me
	if !roleExists {
		is.Fix = "CREATE ROLE " + showIdent(p.Owner) + "; " + alter
	} else {
		is.Fix = alter + " (as a superuser)"
	}
	return is
}

// objectOrder leaves out the objects that need one left out (or missing
// at the destination), and orders the rest so each comes after what it
// needs; among those free to go, functions first and triggers last.
func objectOrder(plans []*objectPlan, byID map[string]*objectPlan) ([]*objectPlan, error) {
	for changed := true; changed; {
		changed = false
		for _, p := range plans {
			if p.present || p.skip != nil {
				continue
			}
			for _, n := range p.Needs {
				if d := byID[n]; d == nil || (!d.present && d.skip != nil) {
					why := "it needs " + n + ", which the destination lacks"
					if d != nil {
						why = "it needs " + d.Object.String() + ", which is not created"
					}
					p.skip = &connector.ObjectIssue{Object: p.Object.String(), Problem: why,
						Fix: "fix what keeps that one from being created, then run ferry cutover again"}
					changed = true
					break
				}
			}
		}
	}
	var todo []*objectPlan
	for _, p := range plans {
		if !p.present && p.skip == nil {
			todo = append(todo, p)
		}
	}
	sort.SliceStable(todo, func(i, j int) bool {
		if a, b := todo[i].Kind.Rank(), todo[j].Kind.Rank(); a != b {
			return a < b
		}
		return todo[i].ID < todo[j].ID
	})
	placed := map[string]bool{}
	var order []*objectPlan
	for len(order) < len(todo) {
		progress := false
		for _, p := range todo {
			if placed[p.ID] {
				continue
			}
			ready := true
			for _, n := range p.Needs {
				if d := byID[n]; !d.present && !placed[n] {
					ready = false
					break
				}
			}
			if ready {
				placed[p.ID] = true
				order = append(order, p)
				progress = true
				break // restart, so kinds and names keep their order
			}
		}
		if !progress {
			var left []string
			for _, p := range todo {
				if !placed[p.ID] {
					left = append(left, p.Object.String())
				}
			}
			return nil, errs.BadConfig("these objects depend on each other in a cycle: "+strings.Join(left, ", "),
				"create them at the destination yourself, then run ferry cutover again")
		}
	}
	return order, nil
}
