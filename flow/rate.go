package flow

import (
	"fmt"
	"strconv"
	"strings"
)

// Rate is a limit on how fast the copy reads the source (--max-rate):
// rows per second, or bytes per second. Zero in both is no limit.
type Rate struct {
	RowsPerSec  float64
	BytesPerSec float64
}

// Unlimited reports a Rate that limits nothing.
func (r Rate) Unlimited() bool { return r.RowsPerSec <= 0 && r.BytesPerSec <= 0 }

func (r Rate) String() string {
	switch {
	case r.RowsPerSec > 0:
		return strconv.FormatFloat(r.RowsPerSec, 'f', -1, 64) + " rows/s"
	case r.BytesPerSec > 0:
		return strconv.FormatFloat(r.BytesPerSec, 'f', -1, 64) + " bytes/s"
	}
	return "unlimited"
}

// byteUnits are the units --max-rate takes for bytes: decimal (kB, MB,
// GB: powers of 1000, as network rates are given) and binary (KiB, MiB,
// GiB).
var byteUnits = []struct {
	suffix string
	mult   float64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"b", 1},
}

// ParseRate reads a --max-rate value: a number of rows per second
// ("5000", "5000rows/s"), or of bytes per second with a unit ("10MB/s",
// "512KiB/s", "1GB"); the "/s" is optional. Empty is no limit.
func ParseRate(s string) (Rate, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	if v == "" {
		return Rate{}, nil
	}
	v = strings.TrimSuffix(v, "/s")
	num, unit := v, ""
	if i := strings.IndexFunc(v, func(r rune) bool { return (r < '0' || r > '9') && r != '.' }); i >= 0 {
		num, unit = strings.TrimSpace(v[:i]), strings.TrimSpace(v[i:])
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || n <= 0 {
		return Rate{}, fmt.Errorf("%q is not a positive number", num)
	}
	switch unit {
	case "", "rows", "row":
		return Rate{RowsPerSec: n}, nil
	}
	for _, u := range byteUnits {
		if unit == u.suffix {
			return Rate{BytesPerSec: n * u.mult}, nil
		}
	}
	return Rate{}, fmt.Errorf("unknown unit %q (rows, B, kB, MB, GB, KiB, MiB, GiB)", unit)
}
