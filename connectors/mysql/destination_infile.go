package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/go-sql-driver/mysql"

	"github.com/ferrydb/ferry/model"
)

// The initial copy loads rows with LOAD DATA LOCAL INFILE, streamed from
// memory (about 20% faster than multi-row INSERT on the same machine, see
// docs/connectors.md), when the server allows it (local_infile=ON) and the
// table has no BIT column (a BIT cannot be written as text). Every value
// goes through the same checks as the INSERT path; and because LOAD DATA
// LOCAL turns data errors into warnings, any warning fails the batch.

var infileSeq atomic.Int64

// canLoadInfile says whether rows of these columns can be loaded from a file.
func (c *Conn) canLoadInfile(targets []*target) bool {
	if !c.server.localInfile || c.dest.noInfile {
		return false
	}
	for _, tg := range targets {
		if tg.ct.name == "bit" {
			return false
		}
	}
	return true
}

// loadInfile writes rows into table name with LOAD DATA LOCAL INFILE ...
// REPLACE, inside tx, in files of at most maxStatement bytes.
func (c *Conn) loadInfile(ctx context.Context, tx *sql.Tx, t *model.Table, name model.Namespace, targets []*target, rows []model.Row) error {
	cols := make([]string, len(targets))
	for i, tg := range targets {
		cols[i] = quoteIdent(tg.name)
	}
	verb := "REPLACE"
	if len(t.PrimaryKey) == 0 {
		verb = "" // a table without a key takes every row as it comes
	}
	// With NO_BACKSLASH_ESCAPES the literals below hold a real tab, a
	// backslash and a newline.
	tail := " INTO TABLE " + quoteName(name) + " CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n' (" + strings.Join(cols, ", ") + ")"
	var buf bytes.Buffer
	var lit []byte
	first := 0
	flush := func(end int) error {
		if buf.Len() == 0 {
			return nil
		}
		h := fmt.Sprintf("ferry-%d", infileSeq.Add(1))
		data := buf.Bytes()
		mysql.RegisterReaderHandler(h, func() io.Reader { return bytes.NewReader(data) })
		defer mysql.DeregisterReaderHandler(h)
		if _, err := tx.ExecContext(ctx, "LOAD DATA LOCAL INFILE 'Reader::"+h+"' "+verb+tail); err != nil {
			if m := atRowRe.FindStringSubmatch(err.Error()); m != nil {
				if n, aerr := strconv.Atoi(m[1]); aerr == nil && n >= 1 && first+n <= end {
					return fmt.Errorf("key %s: %w", formatKey(t, rows[first+n-1]), err)
				}
			}
			return err
		}
		if err := loadWarnings(ctx, tx, t, rows[first:end]); err != nil {
			return err
		}
		buf.Reset()
		first = end
		return nil
	}
	for r, row := range rows {
		if len(row) != len(targets) {
			return fmt.Errorf("row has %d values for %d columns", len(row), len(targets))
		}
		for i, tg := range targets {
			if i > 0 {
				buf.WriteByte('\t')
			}
			var err error
			if lit, err = appendLiteral(lit[:0], tg, row[i]); err != nil {
				return columnErr(t, tg.name, row, err)
			}
			writeField(&buf, lit)
		}
		buf.WriteByte('\n')
		if buf.Len() >= maxStatement {
			if err := flush(r + 1); err != nil {
				return err
			}
		}
	}
	return flush(len(rows))
}

// writeField converts a SQL literal into a LOAD DATA field: NULL is \N,
// strings and X'...' bytes are written raw with backslash escapes, numbers
// as they are.
func writeField(buf *bytes.Buffer, lit []byte) {
	switch {
	case string(lit) == "NULL":
		buf.WriteString(`\N`)
	case bytes.HasPrefix(lit, []byte("X'")):
		raw := make([]byte, hex.DecodedLen(len(lit)-3))
		hex.Decode(raw, lit[2:len(lit)-1]) //nolint:errcheck // appendLiteral wrote valid hex
		escapeField(buf, raw)
	case len(lit) > 0 && lit[0] == '\'':
		escapeField(buf, bytes.ReplaceAll(lit[1:len(lit)-1], []byte("''"), []byte("'")))
	default:
		buf.Write(lit)
	}
}

func escapeField(buf *bytes.Buffer, b []byte) {
	for _, c := range b {
		switch c {
		case '\\':
			buf.WriteString(`\\`)
		case '\t':
			buf.WriteString(`\t`)
		case '\n':
			buf.WriteString(`\n`)
		case 0:
			buf.WriteString(`\0`)
		default:
			buf.WriteByte(c)
		}
	}
}

var atRowRe = regexp.MustCompile(`at row (\d+)`)

// loadWarnings fails a load that the server completed with warnings: LOAD
// DATA LOCAL turns data errors (a truncated string, a value out of range)
// into warnings and carries on.
func loadWarnings(ctx context.Context, tx *sql.Tx, t *model.Table, rows []model.Row) error {
	res, err := tx.QueryContext(ctx, "SHOW WARNINGS LIMIT 3")
	if err != nil {
		return err
	}
	defer res.Close()
	var msgs []string
	var key string
	for res.Next() {
		var level, msg string
		var code int
		if err := res.Scan(&level, &code, &msg); err != nil {
			return err
		}
		msgs = append(msgs, fmt.Sprintf("%s %d: %s", level, code, msg))
		if m := atRowRe.FindStringSubmatch(msg); m != nil && key == "" {
			if n, err := strconv.Atoi(m[1]); err == nil && n >= 1 && n <= len(rows) {
				key = ", key " + formatKey(t, rows[n-1])
			}
		}
	}
	if err := res.Err(); err != nil {
		return err
	}
	if len(msgs) > 0 {
		return fmt.Errorf("the server changed values while loading them%s: %s", key, strings.Join(msgs, "; "))
	}
	return nil
}
