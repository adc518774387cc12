package postgres

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pglogrepl"
)

// tuple encodes a pgoutput TupleData: nil is NULL, "\x00u" an unchanged
// TOAST value, anything else a text value.
func tuple(cols ...any) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(cols)))
	for _, c := range cols {
		switch c := c.(type) {
		case nil:
			b = append(b, 'n')
		case string:
			if c == "\x00u" {
				b = append(b, 'u')
				continue
			}
			b = append(b, 't')
			b = binary.BigEndian.AppendUint32(b, uint32(len(c)))
			b = append(b, c...)
		}
	}
	return b
}

func changeMsg(kind byte, rel uint32, parts ...[]byte) []byte {
	b := binary.BigEndian.AppendUint32([]byte{kind}, rel)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func pgoutputSamples() map[string][]byte {
	big := strings.Repeat("x", 1<<20)
	return map[string][]byte{
		"insert":            changeMsg('I', 7, []byte{'N'}, tuple("1", nil, "", big)),
		"update":            changeMsg('U', 7, []byte{'N'}, tuple("1", "\x00u", "two")),
		"update, key moved": changeMsg('U', 7, []byte{'K'}, tuple("1", nil), []byte{'N'}, tuple("2", "\x00u", big)),
		"update, old row":   changeMsg('U', 7, []byte{'O'}, tuple("1", "a", big), []byte{'N'}, tuple("1", "b", big)),
		"delete, key":       changeMsg('D', 9, []byte{'K'}, tuple("1", nil)),
		"delete, old row":   changeMsg('D', 9, []byte{'O'}, tuple("1", "a", "")),
	}
}

// describe renders a parsed change for comparison.
func describe(m pglogrepl.Message) string {
	tup := func(t *pglogrepl.TupleData) string {
		if t == nil {
			return "-"
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%d[", t.ColumnNum)
		for _, c := range t.Columns {
			fmt.Fprintf(&b, "%c:%d:%x,", c.DataType, c.Length, c.Data)
		}
		return b.String() + "]"
	}
	switch m := m.(type) {
	case *pglogrepl.InsertMessage:
		return fmt.Sprintf("%s rel %d new %s", m.Type(), m.RelationID, tup(m.Tuple))
	case *pglogrepl.UpdateMessage:
		return fmt.Sprintf("%s rel %d old %c %s new %s", m.Type(), m.RelationID, max(m.OldTupleType, '-'), tup(m.OldTuple), tup(m.NewTuple))
	case *pglogrepl.DeleteMessage:
		return fmt.Sprintf("%s rel %d old %c %s", m.Type(), m.RelationID, m.OldTupleType, tup(m.OldTuple))
	}
	return fmt.Sprintf("%T", m)
}

// parseMessage reads inserts, updates and deletes as pglogrepl does, but
// its values point into the message instead of being copies of it.
func TestParseMessageAsPglogreplWithoutCopies(t *testing.T) {
	for name, msg := range pgoutputSamples() {
		want, err := pglogrepl.Parse(msg)
		if err != nil {
			t.Fatalf("%s: pglogrepl: %v", name, err)
		}
		got, err := parseMessage(msg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if describe(got) != describe(want) {
			t.Errorf("%s:\n got  %.300s\n want %.300s", name, describe(got), describe(want))
		}
		// The last text value is the message's last bytes: changing the
		// message changes the value read, so it was not copied.
		tu := tupleOf(got, false)
		if tu == nil {
			tu = tupleOf(got, true)
		}
		if last := tu.Columns[len(tu.Columns)-1]; len(last.Data) > 0 {
			msg[len(msg)-1] ^= 0xff
			if last.Data[len(last.Data)-1] != msg[len(msg)-1] {
				t.Errorf("%s: the value is a copy of the message", name)
			}
		}
	}
	// Every other message still goes through pglogrepl.
	commit := []byte{'C', 0}
	commit = binary.BigEndian.AppendUint64(commit, 10)
	commit = binary.BigEndian.AppendUint64(commit, 20)
	commit = binary.BigEndian.AppendUint64(commit, 30)
	m, err := parseMessage(commit)
	if c, ok := m.(*pglogrepl.CommitMessage); err != nil || !ok || c.TransactionEndLSN != 20 {
		t.Fatalf("commit: %#v, %v", m, err)
	}
}

// tupleOf is a change's new tuple, or its old one.
func tupleOf(m pglogrepl.Message, old bool) *pglogrepl.TupleData {
	switch m := m.(type) {
	case *pglogrepl.InsertMessage:
		if !old {
			return m.Tuple
		}
	case *pglogrepl.UpdateMessage:
		if old {
			return m.OldTuple
		}
		return m.NewTuple
	case *pglogrepl.DeleteMessage:
		if old {
			return m.OldTuple
		}
	}
	return nil
}

// A truncated or malformed change is an error, never a panic or a read
// past the message (pglogrepl panics on them).
func TestParseMessageRefusesTruncatedChanges(t *testing.T) {
	for name, msg := range pgoutputSamples() {
		for n := 1; n < len(msg); n += max(1, n/64) {
			if _, err := parseMessage(msg[:n]); err == nil {
				t.Fatalf("%s cut to %d of %d bytes: no error", name, n, len(msg))
			}
		}
	}
	for _, bad := range [][]byte{
		changeMsg('I', 1, []byte{'X'}, tuple("1")),
		changeMsg('U', 1, []byte{'K'}, tuple("1"), []byte{'X'}),
		changeMsg('D', 1, []byte{'N'}, tuple("1")),
		changeMsg('I', 1, []byte{'N'}, []byte{0, 1, 'z'}),
	} {
		if _, err := parseMessage(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func FuzzParseMessage(f *testing.F) {
	for _, msg := range pgoutputSamples() {
		if len(msg) < 4096 {
			f.Add(msg)
		}
	}
	f.Add(changeMsg('U', 3, []byte{'N'}, tuple("a", nil, "\x00u")))
	f.Fuzz(func(t *testing.T, msg []byte) {
		// Only the changes are decoded here; pglogrepl's own decoding of
		// the rest can allocate whatever a length field says.
		if len(msg) == 0 || !bytes.ContainsAny(msg[:1], "IUD") {
			return
		}
		got, err := parseMessage(msg)
		if err != nil {
			return
		}
		var want pglogrepl.Message
		func() {
			defer func() { _ = recover() }() // pglogrepl panics on some input
			want, err = pglogrepl.Parse(msg)
		}()
		if err == nil && want != nil && describe(got) != describe(want) {
			t.Fatalf("%q:\n got  %s\n want %s", msg, describe(got), describe(want))
		}
	})
}
