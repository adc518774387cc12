// Command ferry copies a database into another and keeps it in sync. This
// file only wires the connectors it ships into the command line.
package main

import (
	"os"

	_ "github.com/ferrydb/ferry/connectors/all"
	"github.com/ferrydb/ferry/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
