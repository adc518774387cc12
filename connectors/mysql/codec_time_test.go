package mysql

import (
	"errors"
	"testing"
	"time"
)

func TestParseTemporal(t *testing.T) {
	utc := func(y int, m time.Month, d, hh, mm, ss, ns int) time.Time {
		return time.Date(y, m, d, hh, mm, ss, ns, time.UTC)
	}
	cases := []struct {
		parse func(string) (time.Time, error)
		what  string
		in    string
		want  time.Time
		zero  bool // the error is errZeroDate
		bad   bool // any other error
	}{
		{parseDate, "date", "2024-02-29", utc(2024, 2, 29, 0, 0, 0, 0), false, false},
		{parseDate, "date", "2024-02-29 10:11:12", utc(2024, 2, 29, 0, 0, 0, 0), false, false}, // a datetime's date part
		{parseDate, "date", "0001-01-01", utc(1, 1, 1, 0, 0, 0, 0), false, false},
		{parseDate, "date", "0000-00-00", time.Time{}, true, false},
		{parseDate, "date", "2024-00-10", time.Time{}, true, false},
		{parseDate, "date", "2024-05-00", time.Time{}, true, false},
		{parseDate, "date", "2024-13-01", time.Time{}, false, true},
		{parseDate, "date", "20240101", time.Time{}, false, true},
		{parseDate, "date", "2024/01/01", time.Time{}, false, true},
		{parseDateTime, "datetime", "2024-02-29 01:02:03", utc(2024, 2, 29, 1, 2, 3, 0), false, false},
		{parseDateTime, "datetime", "2024-02-29T01:02:03.5", utc(2024, 2, 29, 1, 2, 3, 500000000), false, false},
		{parseDateTime, "datetime", "9999-12-31 23:59:59.999999", utc(9999, 12, 31, 23, 59, 59, 999999000), false, false},
		{parseDateTime, "datetime", "2024-02-29", utc(2024, 2, 29, 0, 0, 0, 0), false, false},
		{parseDateTime, "datetime", "0000-00-00 00:00:00", time.Time{}, true, false},
		{parseDateTime, "datetime", "2024-02-29 24:00:00", time.Time{}, false, true},
		{parseDateTime, "datetime", "2024-02-29 01:60:00", time.Time{}, false, true},
		{parseDateTime, "datetime", "2024-02-29 01:02", time.Time{}, false, true},
		{parseDateTime, "datetime", "2024-02-29 01:02:03.", time.Time{}, false, true},
		{parseDateTime, "datetime", "2024-02-29 01:02:03.1234567890", time.Time{}, false, true},
		{parseDateTime, "datetime", "2024-02-29x01:02:03", time.Time{}, false, true},
	}
	for _, c := range cases {
		got, err := c.parse(c.in)
		switch {
		case c.zero:
			if !errors.Is(err, errZeroDate) {
				t.Errorf("%s %q: error %v, want a zero date", c.what, c.in, err)
			}
		case c.bad:
			if err == nil || errors.Is(err, errZeroDate) {
				t.Errorf("%s %q: got %v, %v; want an invalid value", c.what, c.in, got, err)
			}
		case err != nil || !got.Equal(c.want) || got.Location() != time.UTC:
			t.Errorf("%s %q: got %v, %v; want %v", c.what, c.in, got, err, c.want)
		}
	}
}

// MySQL's TIME is a duration: parseTime reads its whole range, and the
// codec decides what a time of day may be.
func TestParseTime(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"00:00:00":        0,
		"12:30:00.25":     12*time.Hour + 30*time.Minute + 250*time.Millisecond,
		"24:00:00":        24 * time.Hour,
		"838:59:59":       838*time.Hour + 59*time.Minute + 59*time.Second,
		"-01:00:00.5":     -(time.Hour + 500*time.Millisecond),
		"01:02:03.000001": time.Hour + 2*time.Minute + 3*time.Second + time.Microsecond,
	} {
		if got, err := parseTime(in); err != nil || got != want {
			t.Errorf("parseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "abc", ":00:00", "1:2:3", "01:02", "01:60:00", "01:02:03,5", "x1:00:00"} {
		if got, err := parseTime(in); err == nil {
			t.Errorf("parseTime(%q) = %v, want an error", in, got)
		}
	}
}
