package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
)

var _ connector.ReplicaLagReader = (*Conn)(nil)

// ReplicaLag runs the user's --replica-lag-query (seconds). A MySQL or
// MariaDB primary does not know its replicas' lag (each replica reports
// its own, Seconds_Behind_Master), so there is no default.
func (c *Conn) ReplicaLag(ctx context.Context, query string) (time.Duration, error) {
	if query == "" {
		return 0, errs.BadConfig("--max-replica-lag needs --replica-lag-query for a MySQL or MariaDB source: the primary does not know its replicas' lag",
			"give a query the source can run that returns the lag in seconds, e.g. one reading a heartbeat table (pt-heartbeat) or a table your monitoring fills")
	}
	var secs sql.NullFloat64
	err := c.db.QueryRowContext(ctx, query).Scan(&secs)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		if lostConnection(err) || ctx.Err() != nil {
			return 0, outage(err, fmt.Errorf("measure the replicas' lag: %w", c.scrubber.Err(err)))
		}
		return 0, errs.BadConfig(fmt.Sprintf("--replica-lag-query %q failed on the source: %v", query, c.scrubber.Err(err)),
			"give a query that returns one number of seconds")
	}
	if !secs.Valid || secs.Float64 <= 0 || math.IsNaN(secs.Float64) {
		return 0, nil
	}
	return time.Duration(min(secs.Float64, float64(math.MaxInt64/int64(time.Second))) * float64(time.Second)), nil
}
