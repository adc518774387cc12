package postgres

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

var _ connector.TableAdder = (*Conn)(nil)

// AddTables makes tables a running flow adds to its --tables part of its
// change stream: ferry's publication adds them (ALTER PUBLICATION ... ADD
// TABLE, committed before the engine copies them, so every later change is
// decoded); a publication the user named (publication=) must publish them
// already. The DDL log records their columns, as for the plan's tables.
func (c *Conn) AddTables(ctx context.Context, flow string, tables []*model.Table) error {
	ordered, err := c.selected(ctx, tables)
	if err != nil {
		return err
	}
	if err := c.checkCDC(ctx, ordered); err != nil {
		return err
	}
	pub, own := c.publicationFor(flow)
	if !own {
		if err := c.checkPublication(ctx, pub, ordered); err != nil {
			return err
		}
	} else if err := c.publishMore(ctx, pub, ordered); err != nil {
		return err
	}
	logged, err := c.publishesDDLLog(ctx, pub)
	if err != nil {
		return err
	}
	if logged {
		if _, err := c.ensureDDLLog(ctx, ordered); err != nil {
			return err
		}
	}
	return nil
}

// publishMore adds to ferry's publication the tables it does not publish
// yet (ADD TABLE refuses a table already published).
func (c *Conn) publishMore(ctx context.Context, pub string, tables []*srcTable) error {
	rows, err := c.pool.Query(ctx, `SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1`, pub)
	if err != nil {
		return c.classify(err, "read publication "+pub)
	}
	have := map[model.Namespace]bool{}
	for rows.Next() {
		var ns model.Namespace
		if err := rows.Scan(&ns.Schema, &ns.Table); err != nil {
			rows.Close()
			return c.classify(err, "read publication "+pub)
		}
		have[ns] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return c.classify(err, "read publication "+pub)
	}
	var names []string
	for _, s := range tables {
		if !have[s.table.Namespace] {
			names = append(names, qualified(s.table.Namespace))
		}
	}
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	stmt := "ALTER PUBLICATION " + quoteIdent(pub) + " ADD TABLE " + strings.Join(names, ", ")
	if _, err := c.pool.Exec(ctx, stmt); err != nil {
		if sqlState(err) == "42501" {
			return &errs.ConfigError{Msg: fmt.Sprintf("cannot add %s to publication %s: the URL's user must own the tables", strings.Join(names, ", "), pub),
				Fix: "as the tables' owner run " + stmt + ", then run the flow again", Err: c.scrub.Err(err)}
		}
		return c.classify(err, "add tables to publication "+pub)
	}
	return nil
}
