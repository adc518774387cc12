package postgres

import (
	"context"

	"github.com/ferrydb/ferry/connector"
)

var _ connector.ServerIdentifier = (*Conn)(nil)

// ServerID is the cluster's system identifier (pg_control_system()): the
// same under every address of the server, and on its physical standbys,
// which pg_basebackup copied from it.
func (c *Conn) ServerID(ctx context.Context) (string, error) {
	var id string
	if err := c.pool.QueryRow(ctx, `SELECT system_identifier::text FROM pg_control_system()`).Scan(&id); err != nil {
		return "", c.classify(err, "read the server's system identifier")
	}
	return id, nil
}
