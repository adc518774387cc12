// Package fake is a deterministic data generator that behaves like a
// database: tables with a column of every canonical type, a partitioned read
// plan, and a change stream of inserts, updates and deletes that can resume
// from any position. Everything derives from the seed, so a test can compute
// the exact expected state of the destination (see Expected).
//
//	fake://?tables=3&rows=100000&seed=1&width=32&changes=5000&changes_per_sec=500
package fake

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/ferrydb/ferry/errs"
)

// Config is the generator's settings, parsed from the URL's query.
type Config struct {
	Tables int   // number of tables, "fake.t1" ...
	Rows   int64 // rows per table at T0
	Seed   uint64
	Width  int // bytes of filler text per row
	// Changes is the number of changes the fake database has after T0;
	// 0 with ChangesPerSec > 0 means an endless stream.
	Changes int64
	// ChangesPerSec paces the stream; 0 delivers as fast as it is read.
	ChangesPerSec float64
	// RowsPerSec paces each partition read of the copy (0 = unpaced), so a
	// test can hold the copy for as long as it needs, however fast the
	// machine.
	RowsPerSec float64
	// Snapshot chooses what the copy reads: "t0" (the state at T0, like an
	// exported snapshot) or "head" (the state after all Changes, like a copy
	// of a live database, which CDC then converges from T0).
	Snapshot string
	// CDC false makes the source refuse change data capture (a source
	// without CDC, for tests).
	CDC bool
}

var params = map[string]string{
	"tables": "number of tables (1-1000)", "rows": "rows per table", "seed": "random seed",
	"width": "filler bytes per row", "changes": "changes after T0 (0 = endless when changes_per_sec > 0)",
	"changes_per_sec": "pace of the change stream (0 = unpaced)", "snapshot": "t0 or head", "cdc": "true or false",
	"rows_per_sec": "pace of each partition read of the copy (0 = unpaced)",
}

// ParseConfig reads a fake:// URL.
func ParseConfig(u *url.URL) (Config, error) {
	c := Config{Tables: 3, Rows: 10000, Seed: 1, Width: 32, Snapshot: "t0", CDC: true}
	if u.Host != "" || (u.Path != "" && u.Path != "/") {
		return c, errs.BadConfig(fmt.Sprintf("fake URL %q has a host or path", u.String()), "put settings in the query: fake://?tables=3&rows=1000")
	}
	for k, vs := range u.Query() {
		if _, ok := params[k]; !ok {
			var known []string
			for p := range params {
				known = append(known, p)
			}
			return c, errs.BadConfig(fmt.Sprintf("unknown fake setting %q", k), "known settings: "+strings.Join(sortStrings(known), ", "))
		}
		v := vs[len(vs)-1]
		var err error
		switch k {
		case "tables":
			c.Tables, err = strconv.Atoi(v)
			if err == nil && (c.Tables < 1 || c.Tables > 1000) {
				err = fmt.Errorf("must be 1-1000")
			}
		case "rows":
			c.Rows, err = strconv.ParseInt(v, 10, 64)
			if err == nil && c.Rows < 0 {
				err = fmt.Errorf("must not be negative")
			}
		case "seed":
			c.Seed, err = strconv.ParseUint(v, 10, 64)
		case "width":
			c.Width, err = strconv.Atoi(v)
			if err == nil && (c.Width < 0 || c.Width > 1<<20) {
				err = fmt.Errorf("must be 0-1048576")
			}
		case "changes":
			c.Changes, err = strconv.ParseInt(v, 10, 64)
			if err == nil && c.Changes < 0 {
				err = fmt.Errorf("must not be negative")
			}
		case "changes_per_sec":
			c.ChangesPerSec, err = strconv.ParseFloat(v, 64)
			if err == nil && c.ChangesPerSec < 0 {
				err = fmt.Errorf("must not be negative")
			}
		case "rows_per_sec":
			c.RowsPerSec, err = strconv.ParseFloat(v, 64)
			if err == nil && c.RowsPerSec < 0 {
				err = fmt.Errorf("must not be negative")
			}
		case "snapshot":
			if v != "t0" && v != "head" {
				err = fmt.Errorf("must be t0 or head")
			}
			c.Snapshot = v
		case "cdc":
			c.CDC, err = strconv.ParseBool(v)
		}
		if err != nil {
			return c, errs.BadConfig(fmt.Sprintf("fake setting %s=%q: %v", k, v, err), params[k])
		}
	}
	return c, nil
}

func sortStrings(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}
