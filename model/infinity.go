package model

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Infinity is the value of a date, timestamp or timestamptz that is later
// (PosInfinity) or earlier (NegInfinity) than every other one: PostgreSQL's
// 'infinity' and '-infinity'. It has its own Go type, not a far-off
// time.Time, so that no connector can write it somewhere as a real date:
// a destination either holds it or refuses the row.
type Infinity int8

const (
	PosInfinity Infinity = 1
	NegInfinity Infinity = -1
)

// String is the text form of an infinity in every format ferry writes.
func (i Infinity) String() string {
	if i < 0 {
		return "-infinity"
	}
	return "infinity"
}

// IsTimeKind reports whether values of k may be an Infinity besides a
// time.Time.
func IsTimeKind(k Kind) bool {
	return k == KindDate || k == KindTimestamp || k == KindTimestampTZ
}

// parseInfinity recognizes the spellings of an infinite date or timestamp.
func parseInfinity(s string) (Infinity, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "infinity", "+infinity":
		return PosInfinity, true
	case "-infinity":
		return NegInfinity, true
	}
	return 0, false
}

// parseTimeLayout is time.Parse for a layout starting with the year "2006",
// also accepting the years Go's Format writes but its Parse refuses: more
// than four digits (10000-01-01) and negative astronomical years
// (-4712-01-01 is 4713 BC), which PostgreSQL dates and timestamps reach.
func parseTimeLayout(layout, s string) (time.Time, error) {
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		i++
	}
	j := i
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	if j-i == 4 && i == 0 || j == i || j >= len(s) || s[j] != '-' {
		return time.Parse(layout, s)
	}
	year, err := strconv.Atoi(s[:j])
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid year in %q", s)
	}
	// Parse the rest against a leap year, then put the real year back and
	// check that the day exists in it (time.Date would roll Feb 29 over).
	ts, err := time.Parse(layout, "2000"+s[j:])
	if err != nil {
		return time.Time{}, err
	}
	out := time.Date(year, ts.Month(), ts.Day(), ts.Hour(), ts.Minute(), ts.Second(), ts.Nanosecond(), ts.Location())
	if out.Month() != ts.Month() || out.Day() != ts.Day() {
		return time.Time{}, fmt.Errorf("day %d-%02d-%02d does not exist", year, ts.Month(), ts.Day())
	}
	return out, nil
}
