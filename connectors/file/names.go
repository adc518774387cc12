package file

import (
	"strconv"
	"strings"

	"github.com/ferrydb/ferry/model"
)

// escapeName percent-encodes the bytes of s that are unsafe or ambiguous in a
// file name: '%' itself (so the encoding is reversible), '/', '\\', control
// bytes (NUL included) and DEL, a leading '.' (no hidden files, no "." or
// ".."), and every '.' when allDots is set (where a dot would be read back as
// a separator). Unicode is kept as it is.
func escapeName(s string, allDots bool) string {
	if !needsEscape(s, allDots) {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if escapeByte(c, i, allDots) {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func escapeByte(c byte, i int, allDots bool) bool {
	return c == '%' || c == '/' || c == '\\' || c < 0x20 || c == 0x7f || (c == '.' && (i == 0 || allDots))
}

func needsEscape(s string, allDots bool) bool {
	for i := 0; i < len(s); i++ {
		if escapeByte(s[i], i, allDots) {
			return true
		}
	}
	return false
}

// unescapeName reverses escapeName. A '%' not followed by two hex digits (in
// a file named by hand) is kept literally.
func unescapeName(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b = append(b, byte(v))
				i += 2
				continue
			}
		}
		b = append(b, s[i])
	}
	return string(b)
}

// tableBase is the file name of a table without extension: "schema.table",
// or "table" without a schema. Dots are escaped in the schema (and in a
// schemaless table name), so the first literal dot always separates schema
// from table and parseBase gets the namespace back exactly.
func tableBase(ns model.Namespace) string {
	if ns.Schema == "" {
		return escapeName(ns.Table, true)
	}
	return escapeName(ns.Schema, true) + "." + escapeName(ns.Table, false)
}

// parseBase is the inverse of tableBase. A hand-named "my.data.v2" reads as
// schema "my", table "data.v2", as model.ParseNamespace would.
func parseBase(base string) model.Namespace {
	i := strings.IndexByte(base, '.')
	if i <= 0 || i == len(base)-1 {
		return model.Namespace{Table: unescapeName(base)}
	}
	return model.Namespace{Schema: unescapeName(base[:i]), Table: unescapeName(base[i+1:])}
}

const (
	partInfix     = ".part-"
	schemaSuffix  = ".schema.json"
	tmpInfix      = ".tmp-"
	finishSuffix  = ".finish"
	stateDir      = ".ferry"
	journalName   = "replace.journal"
	checkpointExt = ".json"
)

// partName is the file of one partition's rows of a table: the table's file
// name, ".part-", and the partition ID with every dot escaped, so the last
// dot of a part file's name is always the one before "part-".
func partName(dataFile, partition string) string {
	return dataFile + partInfix + escapeName(partition, true)
}

// parsePart splits a part file's name into its table file and partition ID.
func parsePart(name string) (dataFile, partition string, ok bool) {
	i := strings.LastIndexByte(name, '.')
	if i <= 0 || !strings.HasPrefix(name[i:], partInfix) || strings.HasPrefix(name, ".") {
		return "", "", false
	}
	dataFile = name[:i]
	if j := strings.LastIndexByte(dataFile, '.'); j < 0 || !isFormat(dataFile[j+1:]) {
		return "", "", false
	}
	return dataFile, unescapeName(name[i+len(partInfix):]), true
}

// comparePartitions orders partition IDs as the plan does: "ns/0002" before
// "ns/0010" before "ns/10000", by the number after the last slash when both
// have one, else by the ID's text.
func comparePartitions(a, b string) int {
	ia, ib := strings.LastIndexByte(a, '/'), strings.LastIndexByte(b, '/')
	if ia >= 0 && ib >= 0 && a[:ia] == b[:ib] {
		na, erra := strconv.ParseUint(a[ia+1:], 10, 64)
		nb, errb := strconv.ParseUint(b[ib+1:], 10, 64)
		if erra == nil && errb == nil {
			switch {
			case na < nb:
				return -1
			case na > nb:
				return 1
			}
		}
	}
	return strings.Compare(a, b)
}
