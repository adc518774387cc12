// Package all registers every connector ferry ships. cmd/ferry imports it,
// and so do tests that need the same registry as the binary.
package all

import (
	_ "github.com/ferrydb/ferry/connectors/duckdb"   // duckdb:// (the connector with -tags duckdb and cgo, else a refusal)
	_ "github.com/ferrydb/ferry/connectors/fake"     // fake://
	_ "github.com/ferrydb/ferry/connectors/file"     // file://
	_ "github.com/ferrydb/ferry/connectors/kafka"    // kafka://
	_ "github.com/ferrydb/ferry/connectors/mysql"    // mysql://
	_ "github.com/ferrydb/ferry/connectors/nats"     // nats://
	_ "github.com/ferrydb/ferry/connectors/null"     // null://
	_ "github.com/ferrydb/ferry/connectors/postgres" // postgres://, postgresql://
	_ "github.com/ferrydb/ferry/connectors/sqlite"   // sqlite://
)
