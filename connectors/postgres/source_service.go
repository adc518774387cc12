package postgres

import (
	"context"
	"fmt"

	"github.com/ferrydb/ferry/connector"
)

// A service is where a source server runs: plain PostgreSQL, or a managed
// service whose operator turns on logical decoding and lets a role
// replicate its own way, so the fix for a refused CDC preflight differs.
type service struct {
	name string
	// roles and settings only this service creates, to tell it apart.
	roles, settings []string
	// walLevel says how to turn on logical decoding.
	walLevel string
	// lacks says what a role lacks to replicate; privilege how to grant it.
	lacks     func(user string) string
	privilege func(user string) string
}

// replicatorRoles are the managed roles whose members may replicate without
// the REPLICATION attribute (RDS and Aurora; Azure). Cloud SQL's
// cloudsqlsuperuser is not one: its members still need the attribute.
var replicatorRoles = []string{"rds_replication", "azure_pg_admin"}

var plainPostgres = service{
	name:     "PostgreSQL",
	walLevel: "set wal_level = logical in postgresql.conf and restart the server",
	lacks: func(user string) string {
		return fmt.Sprintf("a role with the REPLICATION attribute, and %s lacks it", user)
	},
	privilege: func(user string) string {
		return fmt.Sprintf("ALTER ROLE %s REPLICATION (as a superuser)", showIdent(user))
	},
}

// services are the managed services ferry recognises, most specific clue
// first: Cloud SQL and Azure are checked before RDS's more common names.
var services = []service{
	{
		name:     "Azure Database for PostgreSQL",
		roles:    []string{"azure_pg_admin"},
		settings: []string{"azure.extensions", "azure.replication_support"},
		walLevel: "set the server parameter wal_level = logical (in the portal's Server parameters, or az postgres flexible-server parameter set --name wal_level --value logical) and restart the server",
		lacks: func(user string) string {
			return fmt.Sprintf("a member of azure_pg_admin or a role with the REPLICATION attribute, and %s is neither", user)
		},
		privilege: func(user string) string {
			u := showIdent(user)
			return fmt.Sprintf("as the server admin run GRANT azure_pg_admin TO %s, or ALTER ROLE %s REPLICATION", u, u)
		},
	},
	{
		name:     "Google Cloud SQL",
		roles:    []string{"cloudsqlsuperuser"},
		settings: []string{"cloudsql.logical_decoding", "cloudsql.iam_authentication"},
		walLevel: "set the instance's database flag cloudsql.logical_decoding=on (the instance restarts)",
		lacks: func(user string) string {
			return fmt.Sprintf("a role with the REPLICATION attribute (membership in cloudsqlsuperuser is not enough), and %s lacks it", user)
		},
		privilege: func(user string) string {
			return fmt.Sprintf("as a cloudsqlsuperuser member such as the postgres user run ALTER USER %s WITH REPLICATION", showIdent(user))
		},
	},
	{
		name:     "Amazon RDS or Aurora",
		roles:    []string{"rds_replication", "rds_superuser"},
		settings: []string{"rds.logical_replication"},
		walLevel: "set rds.logical_replication = 1 in the DB parameter group, the DB cluster parameter group on Aurora, and reboot",
		lacks: func(user string) string {
			return fmt.Sprintf("a member of rds_replication, and %s is not", user)
		},
		privilege: func(user string) string {
			return fmt.Sprintf("as the master user run GRANT rds_replication TO %s", showIdent(user))
		},
	},
}

// detectService tells which service the source runs on from the roles and
// settings that exist, roles first (a setting can be left behind in a
// restored configuration); plain PostgreSQL when none matches. clue names
// what gave it away, for the message.
func (c *Conn) detectService(ctx context.Context) (svc service, clue string, err error) {
	var roles, settings []string
	for _, s := range services {
		roles = append(roles, s.roles...)
		settings = append(settings, s.settings...)
	}
	rows, err := c.pool.Query(ctx, `SELECT rolname, true FROM pg_roles WHERE rolname = ANY($1)
		UNION ALL SELECT s, false FROM unnest($2::text[]) s WHERE current_setting(s, true) IS NOT NULL`, roles, settings)
	if err != nil {
		return plainPostgres, "", c.classify(err, "look up the server's managed roles and settings")
	}
	haveRole, haveSetting := map[string]bool{}, map[string]bool{}
	for rows.Next() {
		var name string
		var isRole bool
		if err := rows.Scan(&name, &isRole); err != nil {
			rows.Close()
			return plainPostgres, "", c.classify(err, "look up the server's managed roles and settings")
		}
		if isRole {
			haveRole[name] = true
		} else {
			haveSetting[name] = true
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return plainPostgres, "", c.classify(err, "look up the server's managed roles and settings")
	}
	for _, s := range services {
		for _, r := range s.roles {
			if haveRole[r] {
				return s, "it has the role " + r, nil
			}
		}
	}
	for _, s := range services {
		for _, n := range s.settings {
			if haveSetting[n] {
				return s, "it has the setting " + n, nil
			}
		}
	}
	return plainPostgres, "", nil
}

// service is detectService for advice: the plain advice when the server
// cannot be asked, since the refusal it explains matters more.
func (c *Conn) service(ctx context.Context) (service, string) {
	svc, clue, err := c.detectService(ctx)
	if err != nil {
		return plainPostgres, ""
	}
	return svc, clue
}

// on names the service in a message: "" for plain PostgreSQL.
func (s service) on(clue string) string {
	if clue == "" {
		return ""
	}
	return fmt.Sprintf(" (the server looks like %s: %s)", s.name, clue)
}

// replicationPrivilegeError is the refusal of a role that may not
// replicate, with the grant the service needs: by the preflight (err nil),
// or by the server itself (err its refusal).
func (c *Conn) replicationPrivilegeError(ctx context.Context, user string, err error) error {
	svc, clue := c.service(ctx)
	msg := "change data capture needs " + svc.lacks(user)
	if err != nil {
		msg = fmt.Sprintf("%s refused %s the replication privilege", c.where(), user)
	}
	return &connector.ConfigError{
		Msg: msg + svc.on(clue),
		Fix: svc.privilege(user) + ", or copy without CDC with --mode snapshot",
		Err: err,
	}
}

// walLevelError is the refusal of a server without logical decoding, with
// the service's way to turn it on.
func (c *Conn) walLevelError(ctx context.Context, err error) error {
	svc, clue := c.service(ctx)
	return walLevelError(c.where(), svc, clue, c.scrub.Err(err))
}

func walLevelError(where string, svc service, clue string, err error) error {
	return &connector.ConfigError{
		Msg: fmt.Sprintf("change data capture needs wal_level = logical, and %s has another", where) + svc.on(clue),
		Fix: svc.walLevel + ", or copy without CDC with --mode snapshot",
		Err: err,
	}
}
