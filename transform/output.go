package transform

import (
	"regexp"
	"strings"

	"github.com/ferrydb/ferry/model"
)

// output builds the destination's table: the source's definition with the
// columns excluded, renamed, masked and computed, and what refers to them
// (primary key, indexes, partitioning, sequences, extensions) made to
// follow.
func output(t *model.Table, plans []columnPlan, cols []outColumn) *model.Table {
	out := t.Clone()
	// gone are the columns whose values the destination does not get as
	// the source has them; renamed maps old names to new ones.
	gone := map[string]bool{}
	renamed := map[string]string{}
	for i, p := range plans {
		name := t.Columns[i].Name
		if p.excludedBy != "" || p.maskedBy != "" {
			gone[name] = true
		}
		if p.renamedBy != "" && p.renameTo != name {
			renamed[name] = p.renameTo
		}
	}
	rename := func(name string) string {
		if to, ok := renamed[name]; ok {
			return to
		}
		return name
	}

	src := out.Columns // out is a clone: its columns are ours to change
	out.Columns = make([]model.Column, 0, len(cols))
	for _, oc := range cols {
		if oc.prog != nil {
			out.Columns = append(out.Columns, model.Column{Name: oc.name, Type: model.Type{Kind: oc.prog.kind}, Nullable: true})
			continue
		}
		c := src[oc.src]
		c.Name = rename(c.Name)
		if oc.mask.kind != maskNone {
			c = maskedColumn(c, oc.mask)
		} else if c.Expression != "" {
			if mentions(c.Expression, gone) {
				// Its expression reads a column the destination lacks or
				// holds masked: it becomes a plain column of the values copied.
				c.Generated, c.Expression, c.Uses = false, "", nil
			} else {
				c.Expression = renameIdents(c.Expression, renamed)
			}
		}
		out.Columns = append(out.Columns, c)
	}
	for i, k := range out.PrimaryKey {
		out.PrimaryKey[i] = rename(k)
	}
	out.Indexes = followIndexes(out.Indexes, gone, renamed)
	if out.Partitioning != nil {
		if partitioningMentions(out.Partitioning, gone) {
			// Partitions bounded by a column's source values cannot hold
			// its masked values, nor route by a column that is not there.
			out.Partitioning, out.PrimaryKeyPartitions = nil, nil
			for i := range out.Indexes {
				out.Indexes[i].Partitions = nil
			}
		} else {
			out.Partitioning.Key = renameIdents(out.Partitioning.Key, renamed)
			out.Partitioning.Each(func(p *model.TablePartition) {
				if p.Partitioning != nil {
					p.Partitioning.Key = renameIdents(p.Partitioning.Key, renamed)
				}
				p.Indexes = followIndexes(p.Indexes, gone, renamed)
			})
		}
	}
	for i := range out.Sequences {
		if s := &out.Sequences[i]; s.OwnedBy != "" {
			s.OwnedBy = rename(s.OwnedBy)
		}
	}
	for i := range out.Extensions {
		x := &out.Extensions[i]
		kept := x.Columns[:0]
		for _, c := range x.Columns {
			if !gone[c] {
				kept = append(kept, rename(c))
			}
		}
		x.Columns = kept
	}
	return out
}

// maskedColumn is c holding masked values: text for hash and lastN, its
// own type (nullable, as its values become NULL) for redact unless text.
// What only the source engine understands about the column goes: its
// values are no longer the source's.
func maskedColumn(c model.Column, m mask) model.Column {
	c.Generated, c.Expression, c.Default, c.Collation = false, "", "", ""
	c.Uses, c.Identity, c.Constant = nil, nil, nil
	c.Type.Native, c.Type.User, c.Type.TextForm = "", nil, false
	switch {
	case m.kind == maskHash, m.kind == maskLast, c.Type.Kind == model.KindText:
		// A varchar(n) may be too short for a hash or "[redacted]".
		c.Type = model.Type{Kind: model.KindText}
	default:
		c.Nullable = true
	}
	return c
}

// followIndexes drops the indexes on a gone column (excluded or masked)
// and renames the columns of the rest.
func followIndexes(ixs []model.Index, gone map[string]bool, renamed map[string]string) []model.Index {
	kept := ixs[:0]
next:
	for _, ix := range ixs {
		for _, c := range ix.Columns {
			if gone[c] {
				continue next
			}
		}
		if len(ix.Columns) == 0 && mentions(ix.Native, gone) {
			continue // an expression index over a gone column
		}
		for i, c := range ix.Columns {
			if to, ok := renamed[c]; ok {
				ix.Columns[i] = to
			}
		}
		ix.Native = renameIdents(ix.Native, renamed)
		kept = append(kept, ix)
	}
	return kept
}

func partitioningMentions(p *model.Partitioning, names map[string]bool) bool {
	found := mentions(p.Key, names)
	p.Each(func(tp *model.TablePartition) {
		if tp.Partitioning != nil && mentions(tp.Partitioning.Key, names) {
			found = true
		}
	})
	return found
}

// mentions reports whether the source engine's SQL text sql names one of
// the columns names.
func mentions(sql string, names map[string]bool) bool {
	if len(names) == 0 || sql == "" {
		return false
	}
	found := false
	scanIdents(sql, func(name string, _ byte) string {
		if names[name] {
			found = true
		}
		return ""
	})
	return found
}

// renameIdents rewrites the column names in the source engine's SQL text
// sql (an index definition, a partition key, a generated expression) that
// renamed renames.
func renameIdents(sql string, renamed map[string]string) string {
	if len(renamed) == 0 || sql == "" {
		return sql
	}
	return scanIdents(sql, func(name string, quote byte) string {
		to, ok := renamed[name]
		if !ok {
			return ""
		}
		return quoteIdent(to, quote)
	})
}

var plainIdent = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// quoteIdent spells a column name in SQL: bare when the source wrote the old
// one bare and the new one needs no quotes, else in the source's quotes
// (PostgreSQL's "", MySQL's “).
func quoteIdent(name string, quote byte) string {
	if quote == 0 {
		if plainIdent.MatchString(name) {
			return name
		}
		quote = '"'
	}
	q := string(quote)
	return q + strings.ReplaceAll(name, q, q+q) + q
}

// scanIdents calls f for each identifier of sql outside string literals
// (function names and type names after :: left out), with its unquoted
// name and its quote (0 when bare); an f returning "" keeps it, else its
// result replaces it. It returns sql with the replacements.
func scanIdents(sql string, f func(name string, quote byte) string) string {
	var b strings.Builder
	last := 0 // sql[last:] is not yet written to b
	isStart := func(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80 }
	isPart := func(c byte) bool { return isStart(c) || c >= '0' && c <= '9' || c == '$' }
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == '\'':
			j := i + 1
			for j < len(sql) {
				if sql[j] == '\'' {
					if j+1 < len(sql) && sql[j+1] == '\'' {
						j += 2
						continue
					}
					break
				}
				j++
			}
			i = j + 1
		case c == '"' || c == '`':
			j := i + 1
			var name strings.Builder
			for j < len(sql) {
				if sql[j] == c {
					if j+1 < len(sql) && sql[j+1] == c {
						name.WriteByte(c)
						j += 2
						continue
					}
					break
				}
				name.WriteByte(sql[j])
				j++
			}
			if rep := f(name.String(), c); rep != "" {
				b.WriteString(sql[last:i])
				b.WriteString(rep)
				last = min(j+1, len(sql))
			}
			i = j + 1
		case c >= '0' && c <= '9':
			for i < len(sql) && (isPart(sql[i]) || sql[i] == '.') {
				i++
			}
		case isStart(c):
			j := i
			for j < len(sql) && isPart(sql[j]) {
				j++
			}
			k := j
			for k < len(sql) && sql[k] == ' ' {
				k++
			}
			isCall := k < len(sql) && sql[k] == '('
			isType := i >= 2 && sql[i-2:i] == "::"
			if !isCall && !isType {
				word := sql[i:j]
				rep := f(word, 0)
				if rep == "" && strings.ToLower(word) != word {
					rep = f(strings.ToLower(word), 0) // bare names fold to lower case
				}
				if rep != "" {
					b.WriteString(sql[last:i])
					b.WriteString(rep)
					last = j
				}
			}
			i = j
		default:
			i++
		}
	}
	if last == 0 {
		return sql
	}
	b.WriteString(sql[last:])
	return b.String()
}
