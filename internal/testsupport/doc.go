// Package testsupport holds what ferry's tests run against, never part of
// the binary: pgtest and mysqltest start private PostgreSQL and MariaDB
// servers (free ports, temporary directories, removed when the test binary
// ends), and faults injects failures (proxies that cut, reset and slow
// connections; a process's peak memory), and testpki makes the certificates
// of TLS tests (both harnesses start servers with them). They are imported
// by _test.go files only, benchmarks included.
//
// pgtest and mysqltest say the same act with the same verb:
//
//	Start(t, opts...) *Server   a private server, stopped when the test ends
//	Shared(t) *Server           the test binary's one shared server
//	StopShared()                stop it, from TestMain
//	Stop()                      stop at once and remove the directory
//	Down(t, mode)               stop, keeping the data: "fast" (clean
//	                            shutdown, clients disconnected) or
//	                            "immediate" (as a crash: recovery at start)
//	Up(t)                       start a server that is Down again, same port
//	Restart(t, mode)            Down, then Up (pgtest: RestartAfter waits
//	                            between them)
//	URL(db), UserURL(user, password, db)
//	                            the connector URL of a database
//	Connect(t, db)              the driver's own handle to db as superuser
//	Exec(t, ...)                run SQL as superuser, failing the test on
//	                            error (pgtest: in a database, with arguments;
//	                            mysqltest: statements naming their database)
//	CreateDatabase(t, prefix)   a new database named prefix_<random>; returns
//	                            the name; dropped when the test ends
//	CreateUser(t, prefix, password, powers...)
//	                            a login named prefix_<random> with a password
//	                            and role attributes (PostgreSQL) or grants
//	                            (MariaDB); returns the name
//	Log()                       the server's log so far
//
// The names both harnesses generate, and the ports they listen on, come
// from UniqueName and FreePort here.
package testsupport
