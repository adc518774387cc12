// Package testsupport holds what ferry's tests run against, never part of
// the binary: pgtest and mysqltest start private PostgreSQL and MariaDB
// servers (free ports, temporary directories, removed when the test binary
// ends), and faults injects failures (proxies that cut, reset and slow
// connections; a process's peak memory). They are imported by _test.go files
// and bench tooling only.
package testsupport
