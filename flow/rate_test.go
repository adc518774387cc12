package flow

import "testing"

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Rate
		bad  bool
	}{
		{in: "", want: Rate{}},
		{in: "5000", want: Rate{RowsPerSec: 5000}},
		{in: "5000rows/s", want: Rate{RowsPerSec: 5000}},
		{in: "2.5 rows", want: Rate{RowsPerSec: 2.5}},
		{in: "10MB/s", want: Rate{BytesPerSec: 10e6}},
		{in: "512KiB/s", want: Rate{BytesPerSec: 512 << 10}},
		{in: "1GiB", want: Rate{BytesPerSec: 1 << 30}},
		{in: "100b/s", want: Rate{BytesPerSec: 100}},
		{in: "0", bad: true},
		{in: "-5", bad: true},
		{in: "fast", bad: true},
		{in: "10 MBit/s", bad: true},
	} {
		got, err := ParseRate(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseRate(%q) = %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestApplyModeValidation(t *testing.T) {
	base := func() Config { return Config{Source: "fake://", Destination: "null://"} }
	c := base()
	c.ApplyMode = "serial"
	if err := c.Validate(); err == nil {
		t.Error("an unknown --apply-mode passed validation")
	}
	c = base()
	c.ApplyMode, c.Writers = ApplyTransactional, 4
	if err := c.Validate(); err == nil {
		t.Error("--apply-mode transactional with --writers 4 passed validation")
	}
	c = base()
	c.ApplyMode, c.Parallel = ApplyTransactional, 8
	c.Defaults()
	if err := c.Validate(); err != nil || c.Writers != 1 {
		t.Errorf("transactional defaults: writers %d, %v; want 1 writer and no error", c.Writers, err)
	}
}
