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
	return connector.Declaration{Hints: connector.Hints{FullRowIdentity: "binlog_row_image=FULL"}}
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
