package mysqltest

import (
	"database/sql"
	"fmt"
	"strconv"
	"testing"
	"time"
)

// StartReplica starts a private server that replicates primary by GTID
// (MASTER_USE_GTID=slave_pos) and logs what it applies in its own binlog
// (log_slave_updates), as a replica ready to be promoted is: a flow that
// followed primary can resume on it. serverID must differ from the
// primary's (1) and from other replicas'.
func StartReplica(t testing.TB, primary *Server, serverID int, opts ...Option) *Server {
	t.Helper()
	opts = append(opts, WithArgs("--server-id="+strconv.Itoa(serverID), "--log-slave-updates"))
	r := Start(t, opts...)
	r.Exec(t, fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='root', MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=slave_pos", primary.Port),
		"START SLAVE")
	return r
}

// WaitCaughtUp waits until the replica r has applied everything primary
// has logged (its gtid_slave_pos reaches the primary's gtid_binlog_pos).
func (r *Server) WaitCaughtUp(t testing.TB, primary *Server, timeout time.Duration) {
	t.Helper()
	var want string
	if err := primary.conn().QueryRow("SELECT @@GLOBAL.gtid_binlog_pos").Scan(&want); err != nil {
		t.Fatalf("mysqltest: read the primary's gtid_binlog_pos: %v", err)
	}
	var reached sql.NullInt64
	if err := r.conn().QueryRow("SELECT MASTER_GTID_WAIT(?, ?)", want, timeout.Seconds()).Scan(&reached); err != nil {
		t.Fatalf("mysqltest: wait for the replica to reach %s: %v", want, err)
	}
	if !reached.Valid || reached.Int64 != 0 {
		t.Fatalf("mysqltest: the replica did not reach the primary's GTID position %s within %s:\n%s", want, timeout, r.logTail())
	}
}

// Promote makes the replica a primary: it stops replicating, forgets its
// primary and accepts writes.
func (r *Server) Promote(t testing.TB) {
	t.Helper()
	r.Exec(t, "STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = OFF")
}

func (s *Server) conn() *sql.DB {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.db
}
