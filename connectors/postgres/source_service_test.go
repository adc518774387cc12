package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// managedSource is a database with one table, items, owned by a new login
// role (no superuser, no REPLICATION unless attrs says so) with the CREATE
// privilege on the database, as a managed service's application user; a
// member of group unless it is "".
func managedSource(t *testing.T, srv *pgtest.Server, group string, attrs ...string) (db, role string) {
	t.Helper()
	db = srv.CreateDatabase(t, "managed")
	role = srv.CreateUser(t, "app", "pw", attrs...)
	srv.Exec(t, db, `CREATE TABLE items (id int PRIMARY KEY, v text)`)
	srv.Exec(t, db, "ALTER TABLE items OWNER TO "+role)
	srv.Exec(t, db, "GRANT CREATE ON DATABASE "+pgx.Identifier{db}.Sanitize()+" TO "+role)
	if group != "" {
		srv.Exec(t, db, "GRANT "+group+" TO "+role)
	}
	return db, role
}

// accepted checks that the CDC preflight passes for a member of group.
func accepted(t *testing.T, srv *pgtest.Server, group string, attrs ...string) {
	t.Helper()
	db, role := managedSource(t, srv, group, attrs...)
	if err := preflightCDC(t, srv.UserURL(role, "pw", db)); err != nil {
		t.Fatalf("a member of %s (%s) is refused: %v", group, strings.Join(attrs, " "), err)
	}
}

// serviceRole creates a role of a managed service's name for the test: roles
// are the server's, so each test server has one service at a time.
func serviceRole(t *testing.T, srv *pgtest.Server, name string) {
	t.Helper()
	srv.Exec(t, "postgres", "CREATE ROLE "+name)
	t.Cleanup(func() { srv.Exec(t, "postgres", "DROP ROLE "+name) })
}

// preflightCDC runs the CDC preflight of a flow over every table of db, as
// ferry sync does before it touches the destination.
func preflightCDC(t *testing.T, url string) error {
	t.Helper()
	c := open(t, url)
	tables, err := c.Tables(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c.Preflight(context.Background(), tables, connector.PlanOptions{CDC: true, Flow: "managed"})
}

// refused checks that err is a configuration error (exit code 2) whose
// text holds every want and none of notWant.
func refused(t *testing.T, err error, want []string, notWant ...string) {
	t.Helper()
	var ce *connector.ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("want a configuration error, got %v", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	for _, w := range notWant {
		if strings.Contains(err.Error(), w) {
			t.Errorf("error has %q:\n%v", w, err)
		}
	}
}

// The CDC preflight accepts the roles managed services let replicate, and
// tells a role that may not what the service it runs on needs. The server
// is plain PostgreSQL with roles of the services' names: it decides only
// the preflight (a member of its rds_replication cannot really replicate).
func TestPreflightManagedReplicationRoles(t *testing.T) {
	srv := pgtest.Start(t)

	t.Run("plain PostgreSQL", func(t *testing.T) {
		db, role := managedSource(t, srv, "")
		refused(t, preflightCDC(t, srv.UserURL(role, "pw", db)),
			[]string{"a role with the REPLICATION attribute, and " + role + " lacks it", "ALTER ROLE " + role + " REPLICATION (as a superuser)", "--mode snapshot"},
			"looks like", "rds_replication", "azure_pg_admin")
		accepted(t, srv, "", "REPLICATION")
	})

	t.Run("RDS and Aurora", func(t *testing.T) {
		serviceRole(t, srv, "rds_replication")
		accepted(t, srv, "rds_replication")
		// Through a group role, as rds_superuser is on RDS.
		serviceRole(t, srv, "ferry_test_admins")
		srv.Exec(t, "postgres", "GRANT rds_replication TO ferry_test_admins")
		accepted(t, srv, "ferry_test_admins")

		dbN, other := managedSource(t, srv, "")
		refused(t, preflightCDC(t, srv.UserURL(other, "pw", dbN)),
			[]string{"a member of rds_replication, and " + other + " is not", "looks like Amazon RDS or Aurora: it has the role rds_replication", "as the master user run GRANT rds_replication TO " + other},
			"ALTER ROLE")

		// Creating the publication needs CREATE on the database too.
		dbC, noCreate := managedSource(t, srv, "rds_replication")
		srv.Exec(t, dbC, "REVOKE CREATE ON DATABASE "+pgx.Identifier{dbC}.Sanitize()+" FROM "+noCreate)
		refused(t, preflightCDC(t, srv.UserURL(noCreate, "pw", dbC)),
			[]string{noCreate + " has no CREATE privilege on database " + dbC, "GRANT CREATE ON DATABASE " + dbC + " TO " + noCreate, "CREATE PUBLICATION ferry_managed FOR TABLE public.items"})

		// This server, unlike RDS, refuses the member a replication
		// connection: the plan says so with the service's grant, and keeps
		// no publication.
		db, member := managedSource(t, srv, "rds_replication")
		c := open(t, srv.UserURL(member, "pw", db))
		tables, err := c.Tables(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Plan(context.Background(), tables, connector.PlanOptions{CDC: true, Flow: "managed", PartitionRows: 1000, BatchRows: 100})
		refused(t, err, []string{"refused " + member + " the replication privilege", "GRANT rds_replication TO " + member})
		if n := count(t, srv.Connect(t, db), `SELECT count(*) FROM pg_publication`); n != 0 {
			t.Fatalf("the failed plan left %d publications", n)
		}
	})

	t.Run("Azure", func(t *testing.T) {
		serviceRole(t, srv, "azure_pg_admin")
		accepted(t, srv, "azure_pg_admin")
		dbN, other := managedSource(t, srv, "")
		refused(t, preflightCDC(t, srv.UserURL(other, "pw", dbN)),
			[]string{"a member of azure_pg_admin or a role with the REPLICATION attribute, and " + other + " is neither", "looks like Azure Database for PostgreSQL: it has the role azure_pg_admin",
				"as the server admin run GRANT azure_pg_admin TO " + other + ", or ALTER ROLE " + other + " REPLICATION"})
	})

	t.Run("Cloud SQL", func(t *testing.T) {
		serviceRole(t, srv, "cloudsqlsuperuser")
		// Membership in cloudsqlsuperuser does not let a role replicate.
		db, member := managedSource(t, srv, "cloudsqlsuperuser")
		refused(t, preflightCDC(t, srv.UserURL(member, "pw", db)),
			[]string{"membership in cloudsqlsuperuser is not enough", "looks like Google Cloud SQL: it has the role cloudsqlsuperuser",
				"as a cloudsqlsuperuser member such as the postgres user run ALTER USER " + member + " WITH REPLICATION"})
		accepted(t, srv, "cloudsqlsuperuser", "REPLICATION")
	})
}

// A server without logical decoding is refused with the way its service
// turns it on, told by the service's roles or, without them, its settings.
func TestPreflightManagedWALLevel(t *testing.T) {
	srv := pgtest.Start(t, pgtest.WALLevel("replica"))
	db := srv.CreateDatabase(t, "walsrc")
	srv.Exec(t, db, `CREATE TABLE items (id int PRIMARY KEY, v text)`)
	for _, tc := range []struct {
		service, role string
		want          []string
	}{
		{"plain PostgreSQL", "", []string{"set wal_level = logical in postgresql.conf and restart the server"}},
		{"RDS and Aurora", "rds_superuser", []string{"looks like Amazon RDS or Aurora: it has the role rds_superuser",
			"set rds.logical_replication = 1 in the DB parameter group, the DB cluster parameter group on Aurora, and reboot"}},
		{"Cloud SQL", "cloudsqlsuperuser", []string{"looks like Google Cloud SQL", "set the instance's database flag cloudsql.logical_decoding=on"}},
		{"Azure", "azure_pg_admin", []string{"looks like Azure Database for PostgreSQL", "set the server parameter wal_level = logical", "restart the server"}},
	} {
		t.Run(tc.service, func(t *testing.T) {
			notWant := []string{"postgresql.conf"}
			if tc.role != "" {
				serviceRole(t, srv, tc.role)
			} else {
				notWant = []string{"looks like"}
			}
			want := append([]string{"change data capture needs wal_level = logical", "wal_level is replica", "--mode snapshot"}, tc.want...)
			refused(t, preflightCDC(t, srv.URL(db)), want, notWant...)
		})
	}

	t.Run("RDS told by its setting", func(t *testing.T) {
		rds := pgtest.Start(t, pgtest.WALLevel("replica"), pgtest.Setting("rds.logical_replication=0"))
		db := rds.CreateDatabase(t, "walsrc")
		rds.Exec(t, db, `CREATE TABLE items (id int PRIMARY KEY, v text)`)
		refused(t, preflightCDC(t, rds.URL(db)),
			[]string{"looks like Amazon RDS or Aurora: it has the setting rds.logical_replication", "set rds.logical_replication = 1 in the DB parameter group"},
			"postgresql.conf")
	})
}
