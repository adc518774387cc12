package transform

import (
	"fmt"

	"github.com/ferrydb/ferry/model"
)

// Row turns a copy row (the source's shape) into the destination's shape;
// false when a filter leaves it out. The row it returns is new: r is not
// changed.
func (x *Table) Row(r model.Row) (model.Row, bool, error) {
	if err := x.checkRow(r, "row"); err != nil {
		return nil, false, err
	}
	if ok, err := x.pass(r); !ok || err != nil {
		return nil, false, err
	}
	out, err := x.row(r)
	if err != nil {
		return nil, false, err
	}
	return out, true, nil
}

// Change turns a change (the source's shape) into the destination's shape;
// false when the destination must not see it. A filter may turn an update
// into a delete or an insert (see the package doc).
func (x *Table) Change(c model.Change) (model.Change, bool, error) {
	var err error
	switch c.Op {
	case model.OpInsert:
		if err := x.checkRow(c.Row, "inserted row"); err != nil {
			return model.Change{}, false, err
		}
		if ok, err := x.pass(c.Row); !ok || err != nil {
			return model.Change{}, false, err
		}
		if c.Row, err = x.row(c.Row); err != nil {
			return model.Change{}, false, err
		}
		return c, true, nil
	case model.OpUpdate:
		if err := x.checkRow(c.Row, "updated row"); err != nil {
			return model.Change{}, false, err
		}
		if x.fullRow && c.Key != nil {
			return x.fullRowUpdate(c)
		}
		return x.keyedUpdate(c)
	case model.OpDelete:
		if x.fullRow {
			if err := x.checkRow(c.Key, "deleted row"); err != nil {
				return model.Change{}, false, err
			}
			if ok, err := x.pass(c.Key); !ok || err != nil {
				return model.Change{}, false, err
			}
			if c.Key, err = x.row(c.Key); err != nil {
				return model.Change{}, false, err
			}
			return c, true, nil
		}
		// Kept whatever the filter: the old row is unknown, and deleting a
		// row the destination never had is harmless.
		if c.Key, err = x.key(c.Key); err != nil {
			return model.Change{}, false, err
		}
		return c, true, nil
	}
	return c, true, nil // a truncate: every row goes, filtered or not
}

// keyedUpdate is an update of a table with a primary key (or, without a
// key, one whose old row the source does not send): its old row unknown,
// an update whose new row fails the filter deletes the row by its key, in
// case it was there.
func (x *Table) keyedUpdate(c model.Change) (model.Change, bool, error) {
	ok, err := x.pass(c.Row)
	if err != nil {
		return model.Change{}, false, err
	}
	if !ok {
		if len(x.keyIdx) == 0 {
			return model.Change{}, false, nil // no key to delete by
		}
		key := c.Key
		if key == nil {
			key = make(model.Row, len(x.keyIdx))
			for j, i := range x.keyIdx {
				key[j] = c.Row[i]
			}
			if key, err = x.maskKey(key, key); err != nil {
				return model.Change{}, false, err
			}
		} else if key, err = x.key(key); err != nil {
			return model.Change{}, false, err
		}
		return model.Change{Op: model.OpDelete, Table: c.Table, Key: key}, true, nil
	}
	if c.Row, err = x.row(c.Row); err != nil {
		return model.Change{}, false, err
	}
	if c.Key, err = x.key(c.Key); err != nil {
		return model.Change{}, false, err
	}
	return c, true, nil
}

// fullRowUpdate is an update of a table without a primary key whose Key
// is the whole old row: both rows are filtered, and the update becomes
// what moves the destination from the one to the other.
func (x *Table) fullRowUpdate(c model.Change) (model.Change, bool, error) {
	if err := x.checkRow(c.Key, "updated row's old image"); err != nil {
		return model.Change{}, false, err
	}
	oldOK, err := x.pass(c.Key)
	if err != nil {
		return model.Change{}, false, err
	}
	newOK, err := x.pass(c.Row)
	if err != nil {
		return model.Change{}, false, err
	}
	switch {
	case oldOK && newOK:
		if c.Row, err = x.row(c.Row); err != nil {
			return model.Change{}, false, err
		}
		if c.Key, err = x.row(c.Key); err != nil {
			return model.Change{}, false, err
		}
		return c, true, nil
	case oldOK:
		key, err := x.row(c.Key)
		if err != nil {
			return model.Change{}, false, err
		}
		return model.Change{Op: model.OpDelete, Table: c.Table, Key: key}, true, nil
	case newOK:
		row, err := x.row(c.Row)
		if err != nil {
			return model.Change{}, false, err
		}
		return model.Change{Op: model.OpInsert, Table: c.Table, Row: row}, true, nil
	}
	return model.Change{}, false, nil
}

// pass reports whether r passes every filter.
func (x *Table) pass(r model.Row) (bool, error) {
	for _, f := range x.filters {
		if ok, err := x.env.pass(f, r); !ok || err != nil {
			return false, err
		}
	}
	return true, nil
}

// row builds the output row of the source row r: one allocation besides
// what masks and expressions make.
func (x *Table) row(r model.Row) (model.Row, error) {
	out := make(model.Row, len(x.cols))
	for i, c := range x.cols {
		switch {
		case c.prog != nil:
			v, err := x.env.computed(c.prog, r)
			if err != nil {
				return nil, err
			}
			out[i] = v
		case c.mask.kind != maskNone:
			v, err := x.masker.apply(c.mask, c.typ, r[c.src])
			if err != nil {
				return nil, x.maskErr(x.src.Columns[c.src].Name, c.mask, r, err)
			}
			out[i] = v
		default:
			out[i] = r[c.src]
		}
	}
	return out, nil
}

// key transforms a change's Key of a keyed table (primary-key order): as
// it is when no key column is masked, a new row otherwise.
func (x *Table) key(k model.Row) (model.Row, error) {
	if k == nil || !x.keyMasked {
		return k, nil
	}
	if len(k) != len(x.keyIdx) {
		return nil, fmt.Errorf("table %s: a change's key has %d values, the primary key %d columns", x.src.Namespace, len(k), len(x.keyIdx))
	}
	return x.maskKey(make(model.Row, len(k)), k)
}

// maskKey writes the masked key k into dst (which may be k).
func (x *Table) maskKey(dst, k model.Row) (model.Row, error) {
	for j, v := range k {
		m := x.keyMasks[j]
		if m.kind == maskNone {
			dst[j] = v
			continue
		}
		c := x.src.Columns[x.keyIdx[j]]
		out, err := x.masker.apply(m, c.Type, v)
		if err != nil {
			return nil, fmt.Errorf("table %s: mask %s of key column %s: %w", x.src.Namespace, m, c.Name, err)
		}
		dst[j] = out
	}
	return dst, nil
}

func (x *Table) maskErr(column string, m mask, r model.Row, err error) error {
	where := "a row"
	if k := model.KeyText(x.src, r); k != "" {
		where = "the row " + k
	}
	return fmt.Errorf("table %s: mask %s of column %s on %s: %w", x.src.Namespace, m, column, where, err)
}

// checkRow refuses a row not of the source table's shape (a schema change
// the transform was not rebuilt for) rather than misplace its values.
func (x *Table) checkRow(r model.Row, what string) error {
	if len(r) != len(x.src.Columns) {
		return fmt.Errorf("table %s: the %s has %d values, the table %d columns (its transforms were made for another definition)", x.src.Namespace, what, len(r), len(x.src.Columns))
	}
	return nil
}
