package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/ferrydb/ferry/model"
)

// generated is how to compute a table's generated columns. pgoutput does not
// send them, so for each changed row ferry evaluates their expressions on
// the source over the row's other values (generation expressions are
// immutable, so this gives the value the source stored).
type generated struct {
	cols  []genCol
	types []string // per table column, its type with modifier
}

type genCol struct {
	idx  int    // table column
	expr string // the generation expression
	deps []int  // table columns it reads
}

func (c *Conn) loadGenerated(ctx context.Context, t *model.Table) (*generated, error) {
	name := qualified(t.Namespace)
	rows, err := c.pool.Query(ctx, `SELECT a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attgenerated <> '',
			COALESCE(pg_get_expr(d.adbin, d.adrelid), '')
		FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`, name)
	if err != nil {
		return nil, c.classify(err, "read generated columns of "+t.Namespace.String())
	}
	g := &generated{types: make([]string, len(t.Columns))}
	byNum := map[int16]int{}
	exprs := map[int]string{}
	for rows.Next() {
		var num int16
		var col, typ, expr string
		var gen bool
		if err := rows.Scan(&num, &col, &typ, &gen, &expr); err != nil {
			rows.Close()
			return nil, c.classify(err, "read generated columns of "+t.Namespace.String())
		}
		i := t.ColumnIndex(col)
		if i < 0 {
			continue
		}
		byNum[num] = i
		g.types[i] = typ
		if gen && t.Columns[i].Generated {
			exprs[i] = expr
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, c.classify(err, "read generated columns of "+t.Namespace.String())
	}
	deps := map[int][]int{}
	rows, err = c.pool.Query(ctx, `SELECT objsubid::int2, refobjsubid::int2 FROM pg_depend
		WHERE classid = 'pg_class'::regclass AND objid = to_regclass($1) AND refclassid = 'pg_class'::regclass
			AND refobjid = objid AND objsubid > 0 AND refobjsubid > 0`, name)
	if err != nil {
		return nil, c.classify(err, "read generated columns of "+t.Namespace.String())
	}
	for rows.Next() {
		var gnum, dnum int16
		if err := rows.Scan(&gnum, &dnum); err != nil {
			rows.Close()
			return nil, c.classify(err, "read generated columns of "+t.Namespace.String())
		}
		gi, ok1 := byNum[gnum]
		di, ok2 := byNum[dnum]
		if ok1 && ok2 {
			deps[gi] = append(deps[gi], di)
		}
	}
	rows.Close()
	for i, col := range t.Columns {
		if !col.Generated {
			continue
		}
		expr, ok := exprs[i]
		if !ok || g.types[i] == "" {
			return nil, fmt.Errorf("table %s: generated column %s: no generation expression at the source", t.Namespace, col.Name)
		}
		g.cols = append(g.cols, genCol{idx: i, expr: expr, deps: deps[i]})
	}
	return g, nil
}

// computeGenerated fills the generated columns of the open transaction's
// inserted and updated rows. A generated column that reads a value the
// source left unchanged (TOAST) is left unchanged too.
func (s *streamer) computeGenerated(ctx context.Context) error {
	type item struct {
		row model.Row
		raw []*string
	}
	byTable := map[model.Namespace][]item{}
	for i := range s.changes {
		ch := &s.changes[i]
		if ch.Row == nil || s.rawRows[i] == nil {
			continue
		}
		byTable[ch.Table] = append(byTable[ch.Table], item{ch.Row, s.rawRows[i]})
	}
	for ns, items := range byTable {
		st := s.tables[ns]
		g := st.gen
		var inputs []int
		for i, col := range st.table.Columns {
			if !col.Generated {
				inputs = append(inputs, i)
			}
		}
		per := max(1, 60000/(len(inputs)+1))
		for start := 0; start < len(items); start += per {
			chunk := items[start:min(start+per, len(items))]
			var values []string
			var params [][]byte
			for r, it := range chunk {
				ph := []string{"$" + strconv.Itoa(len(params)+1) + "::int"}
				params = append(params, []byte(strconv.Itoa(r)))
				for _, i := range inputs {
					ph = append(ph, "$"+strconv.Itoa(len(params)+1)+"::"+g.types[i])
					if it.raw[i] == nil {
						params = append(params, nil)
					} else {
						params = append(params, []byte(*it.raw[i]))
					}
				}
				values = append(values, "("+strings.Join(ph, ", ")+")")
			}
			aliases := []string{"ferry_row"}
			for _, i := range inputs {
				aliases = append(aliases, quoteIdent(st.table.Columns[i].Name))
			}
			exprs := make([]string, len(g.cols))
			for j, gc := range g.cols {
				exprs[j] = "((" + gc.expr + ")::" + g.types[gc.idx] + ")::text"
			}
			q := "SELECT " + strings.Join(exprs, ", ") + " FROM (VALUES " + strings.Join(values, ", ") + ") AS v(" + strings.Join(aliases, ", ") + ") ORDER BY ferry_row"
			res, err := s.c.queryText(ctx, q, params)
			if err != nil {
				return s.c.classify(err, "compute generated columns of "+ns.String())
			}
			if len(res) != len(chunk) {
				return fmt.Errorf("compute generated columns of %s: %d rows for %d", ns, len(res), len(chunk))
			}
			for r, vals := range res {
				it := chunk[r]
				for j, gc := range g.cols {
					unchanged := false
					for _, d := range gc.deps {
						if model.IsUnchanged(it.row[d]) {
							unchanged = true
						}
					}
					switch {
					case unchanged:
						it.row[gc.idx] = model.Unchanged
					case vals[j] == nil:
						it.row[gc.idx] = nil
					default:
						v, err := st.decs[gc.idx](*vals[j])
						if err != nil {
							return &decodeError{fmt.Errorf("table %s, generated column %s: %w", ns, st.table.Columns[gc.idx].Name, err)}
						}
						it.row[gc.idx] = v
					}
				}
			}
		}
	}
	return nil
}

// queryText runs a query with text parameters (nil for NULL) on a pooled
// connection and returns its rows as text (nil for NULL).
func (c *Conn) queryText(ctx context.Context, sql string, params [][]byte) ([][]*string, error) {
	conn, err := c.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	res := conn.Conn().PgConn().ExecParams(ctx, sql, params, nil, nil, nil)
	var out [][]*string
	for res.NextRow() {
		vals := res.Values()
		row := make([]*string, len(vals))
		for i, v := range vals {
			if v != nil {
				s := string(v)
				row[i] = &s
			}
		}
		out = append(out, row)
	}
	if _, err := res.Close(); err != nil {
		return nil, err
	}
	return out, nil
}
