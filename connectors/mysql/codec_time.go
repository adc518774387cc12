package mysql

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// errZeroDate marks a zero date ("0000-00-00", or a month or day of 0), which
// no canonical value represents.
var errZeroDate = errors.New("zero date")

// parseDate parses "YYYY-MM-DD" (a datetime's date part is accepted too).
func parseDate(s string) (time.Time, error) {
	if len(s) > 10 {
		s = s[:10]
	}
	y, m, d, ok := ymd(s)
	if !ok {
		return time.Time{}, fmt.Errorf("invalid date %q", s)
	}
	if m == 0 || d == 0 {
		return time.Time{}, fmt.Errorf("%w %s", errZeroDate, s)
	}
	return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC), nil
}

// parseDateTime parses "YYYY-MM-DD HH:MM:SS[.ffffff]" as a UTC wall clock.
func parseDateTime(s string) (time.Time, error) {
	if len(s) < 19 || s[10] != ' ' && s[10] != 'T' {
		if len(s) == 10 {
			return parseDate(s)
		}
		return time.Time{}, fmt.Errorf("invalid datetime %q", s)
	}
	y, m, d, ok := ymd(s[:10])
	if !ok {
		return time.Time{}, fmt.Errorf("invalid datetime %q", s)
	}
	if m == 0 || d == 0 {
		return time.Time{}, fmt.Errorf("%w %s", errZeroDate, s)
	}
	hh, mm, ss, ns, ok := hms(s[11:])
	if !ok || hh > 23 {
		return time.Time{}, fmt.Errorf("invalid datetime %q", s)
	}
	return time.Date(y, time.Month(m), d, hh, mm, ss, ns, time.UTC), nil
}

// parseTime parses MySQL's TIME text "[-]HHH:MM:SS[.ffffff]".
func parseTime(s string) (time.Duration, error) {
	neg := strings.HasPrefix(s, "-")
	body := strings.TrimPrefix(s, "-")
	i := strings.IndexByte(body, ':')
	if i < 1 {
		return 0, fmt.Errorf("invalid time %q", s)
	}
	h, err := strconv.Atoi(body[:i])
	if err != nil {
		return 0, fmt.Errorf("invalid time %q", s)
	}
	_, mm, ss, ns, ok := hms("00" + body[i:])
	if !ok {
		return 0, fmt.Errorf("invalid time %q", s)
	}
	d := time.Duration(h)*time.Hour + time.Duration(mm)*time.Minute + time.Duration(ss)*time.Second + time.Duration(ns)
	if neg {
		d = -d
	}
	return d, nil
}

func ymd(s string) (y, m, d int, ok bool) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, 0, 0, false
	}
	y, e1 := strconv.Atoi(s[:4])
	m, e2 := strconv.Atoi(s[5:7])
	d, e3 := strconv.Atoi(s[8:10])
	if e1 != nil || e2 != nil || e3 != nil || m > 12 || d > 31 {
		return 0, 0, 0, false
	}
	return y, m, d, true
}

// hms parses "HH:MM:SS[.fraction]".
func hms(s string) (h, m, sec, ns int, ok bool) {
	if len(s) < 8 || s[2] != ':' || s[5] != ':' {
		return 0, 0, 0, 0, false
	}
	h, e1 := strconv.Atoi(s[:2])
	m, e2 := strconv.Atoi(s[3:5])
	sec, e3 := strconv.Atoi(s[6:8])
	if e1 != nil || e2 != nil || e3 != nil || m > 59 || sec > 59 {
		return 0, 0, 0, 0, false
	}
	if rest := s[8:]; rest != "" {
		if rest[0] != '.' || len(rest) > 10 || len(rest) < 2 {
			return 0, 0, 0, 0, false
		}
		frac := rest[1:]
		n, err := strconv.Atoi(frac)
		if err != nil || n < 0 {
			return 0, 0, 0, 0, false
		}
		for i := len(frac); i < 9; i++ {
			n *= 10
		}
		ns = n
	}
	return h, m, sec, ns, true
}
