package model

// Definitions across engines. A source's own SQL (Column.Default, Index.Native,
// Constraint.Definition and Index) is for a destination of its engine. A
// source whose SQL another engine cannot read (MySQL) leaves those empty
// and gives what it can in a portable form instead, which every destination
// translates into its own SQL:
//
//   - an AUTO_INCREMENT column is a Column.Identity (BY DEFAULT, its sequence
//     named <table>_<column>_seq); its next value is a connector.Sequence
//     owned by the column, set at cutover;
//   - a constant default, or the current time, is a Column.Constant;
//   - a secondary or unique index is an Index with Columns and no Native;
//   - a unique constraint, foreign key or check is a Constraint without
//     Definition and Index, made of its portable fields (below);
//   - anything else is a Table.Uncarried (or a Constraint.Unportable), which
//     the destination lists, never drops silently.
//
// Every source fills a Constraint's portable fields where it can, for a
// destination of another engine: Columns (a unique key's when it is made
// of plain columns, a foreign key's), RefTable, RefColumns, OnDelete and
// OnUpdate, and PortableCheck, a check in standard SQL: identifiers
// double-quoted, string literals in single quotes, numbers, comparisons,
// arithmetic, AND, OR, NOT, IS [NOT] NULL, IN, BETWEEN and LIKE; no
// function, no cast.

// Constant is a column default every engine can express.
type Constant struct {
	// Value is the constant in the column's canonical kind, as text ("12.50",
	// "abc", "1" for true, "2024-01-02 03:04:05"); empty with Now.
	Value string `json:"value,omitempty"`
	// Now is the current time (date) at insert: CURRENT_TIMESTAMP.
	Now bool `json:"now,omitempty"`
}

// Uncarried is a definition of a source table that only its own engine can
// create as it is (a FULLTEXT index, a default calling a function).
type Uncarried struct {
	// What names it ("index ft_body", "default of column created_on");
	// Column is the column concerned, "" for none.
	What   string `json:"what"`
	Column string `json:"column,omitempty"`
	// Source is the source's own definition, for the user to translate.
	Source string `json:"source"`
}
