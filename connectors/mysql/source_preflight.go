package mysql

import (
	"context"
	"fmt"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

var _ connector.Declarer = (*Conn)(nil)

// Declare: a table without a primary key is streamed with whole old rows
// only from FULL row images.
func (*Conn) Declare() connector.Declaration {
	return connector.Declaration{SpanApply: true, Hints: connector.Hints{FullRowIdentity: "binlog_row_image=FULL"}}
}

// Preflight checks, before anything is written anywhere, that the tables can
// be read (no column of a type ferry cannot map) and, with opts.CDC, that
// the binlog can feed change data capture: enabled, ROW format, FULL row
// images, character sets ferry decodes, and the replication privileges.
func (c *Conn) Preflight(ctx context.Context, tables []*model.Table, opts connector.PlanOptions) error {
	infos, err := c.describeTables(ctx, tables)
	if err != nil {
		return err
	}
	for _, t := range tables {
		ti := infos[t.Namespace]
		if ti == nil {
			return errs.BadConfig(fmt.Sprintf("mysql %s: table %s does not exist", c.host, t.Namespace), "check the table selection")
		}
		if err := ti.problem(); err != nil {
			return &errs.ConfigError{Msg: err.Error(), Fix: fmt.Sprintf("exclude the table with --tables '!%s'", t.Namespace)}
		}
	}
	if !opts.CDC {
		return nil
	}
	if err := c.checkBinlogSettings(); err != nil {
		return err
	}
	if err := c.warnCascades(ctx, tables); err != nil {
		return err
	}
	for _, t := range tables {
		ti := infos[t.Namespace]
		for i, col := range ti.table.Columns {
			switch col.Type.Kind {
			case model.KindText, model.KindEnum, model.KindJSON:
				cs := ti.charsets[i]
				if !isUTF8Charset(cs) && cs != "latin1" && cs != "ascii" {
					return &errs.ConfigError{Msg: fmt.Sprintf("mysql %s: table %s, column %s uses character set %s, which ferry's binlog reader does not decode", c.host, t.Namespace, col.Name, cs),
						Fix: fmt.Sprintf("convert the column to utf8mb4 (ALTER TABLE %s CONVERT TO CHARACTER SET utf8mb4), or copy without CDC with --mode snapshot", quoteName(t.Namespace))}
				}
			case model.KindUUID:
				return &errs.ConfigError{Msg: fmt.Sprintf("mysql %s: table %s, column %s is a MariaDB UUID, which ferry's binlog reader does not decode", c.host, t.Namespace, col.Name),
					Fix: "store it as CHAR(36) or BINARY(16), or copy without CDC with --mode snapshot"}
			}
		}
	}
	return c.checkReplication(ctx)
}

// warnCascades warns of the foreign keys of the flow's tables whose
// actions change rows: MySQL before 9 and MariaDB do not write the rows a
// cascade (ON DELETE CASCADE or SET NULL, ON UPDATE ...) changes to the
// binlog, so change data capture never sees those changes and the
// destination keeps the rows as they were.
func (c *Conn) warnCascades(ctx context.Context, tables []*model.Table) error {
	where := func(err error) error {
		if err == nil {
			return nil
		}
		return fmt.Errorf("mysql %s: read foreign keys: %w", c.host, c.scrubber.Err(err))
	}
	selected := map[model.Namespace]bool{}
	for _, t := range tables {
		selected[t.Namespace] = true
	}
	rows, err := c.db.QueryContext(ctx, `SELECT CONSTRAINT_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, REFERENCED_TABLE_NAME, DELETE_RULE, UPDATE_RULE
		FROM information_schema.REFERENTIAL_CONSTRAINTS
		WHERE DELETE_RULE NOT IN ('RESTRICT', 'NO ACTION') OR UPDATE_RULE NOT IN ('RESTRICT', 'NO ACTION')
		ORDER BY CONSTRAINT_SCHEMA, TABLE_NAME, CONSTRAINT_NAME`)
	if err != nil {
		return where(err)
	}
	defer rows.Close()
	for rows.Next() {
		var ns model.Namespace
		var name, parent, onDelete, onUpdate string
		if err := rows.Scan(&ns.Schema, &ns.Table, &name, &parent, &onDelete, &onUpdate); err != nil {
			return where(err)
		}
		if !selected[ns] {
			continue
		}
		c.log.Warn("mysql: the binlog does not carry the rows a foreign key's cascade changes",
			"table", ns.String(), "foreign_key", name, "references", parent, "on_delete", onDelete, "on_update", onUpdate,
			"consequence", "after a delete or update of a referenced row, the destination keeps this table's rows the cascade changed at the source as they were",
			"fix", "the cutover's foreign-key check names any such row (ferry verify lists them); or copy with --mode snapshot while the application is stopped")
	}
	return where(rows.Err())
}
