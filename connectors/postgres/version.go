package postgres

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/ferrydb/ferry/errs"
)

// minMajor is the oldest PostgreSQL ferry supports, as source and as
// destination: publications with publish_via_partition_root (partitioned
// tables stream under their own name) and pg_replication_slots' wal_status
// and safe_wal_size (slot safety) came with 13. docs/connectors.md lists the
// supported versions.
const minMajor = 13

// tidRangeMajor is the first version with TID range scans, which the copy's
// block-range partitions need to read only their own blocks; older servers
// get key-range partitions (source_keyrange.go).
const tidRangeMajor = 14

// keyPartitionsEnv forces key-range partitions on any server, so tests
// cover that path on the PostgreSQL they have. Undocumented on purpose.
const keyPartitionsEnv = "FERRY_POSTGRES_KEY_PARTITIONS"

// parseMajor reads the major version from the server_version parameter
// ("15.5 (Debian 15.5-0+deb12u1)", "17beta1", "9.6.24"); 0 if unreadable.
func parseMajor(v string) int {
	end := strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(v)
	}
	n, err := strconv.Atoi(v[:end])
	if err != nil {
		return 0
	}
	return n
}

// checkVersion refuses a server older than minMajor, naming its version and
// the supported ones. An unreadable version passes: a server that speaks
// the protocol under another name is given the benefit of the doubt.
func (c *Conn) checkVersion(version string) error {
	major := parseMajor(version)
	if major == 0 || major >= minMajor {
		return nil
	}
	return errs.BadConfig(fmt.Sprintf("postgres %s: PostgreSQL %s is not supported; ferry supports PostgreSQL %d and later (as source and destination)", c.where(), version, minMajor),
		"upgrade the server, or move the data with the server's own tools (pg_dump)")
}

// keyPartitions tells whether the copy partitions tables by key ranges
// instead of block ranges: on a server without TID range scans, or when a
// test forces it.
func (c *Conn) keyPartitions() bool {
	if os.Getenv(keyPartitionsEnv) == "1" {
		return true
	}
	return c.major > 0 && c.major < tidRangeMajor
}
