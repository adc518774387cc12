package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// keyText renders a row's key for an error message, (id=5, code=ab), so a
// refused value can be found at the source; () for a table without a key.
func keyText(t *model.Table, row model.Row) string {
	if k := model.KeyText(t, row); k != "" {
		return k
	}
	return "()"
}

// sqlState returns the SQLSTATE of a server error, or "".
func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// classify turns a driver error into one that says what to do: a
// ConfigError for problems of configuration (credentials, privileges,
// server settings, names), the scrubbed error otherwise.
func (c *Conn) classify(err error, what string) error {
	if err == nil {
		return nil
	}
	if errs.IsConfigError(err) || errors.Is(err, context.Canceled) {
		return err
	}
	err = c.scrub.Err(err)
	if p := errs.DiagnoseTLS(err); p != errs.NoTLSProblem {
		return c.tlsError(p, what, err)
	}
	if clientCertRefusal(err) {
		return c.clientCertError(what, err)
	}
	user := c.cfg.ConnConfig.User
	switch sqlState(err) {
	case "28000":
		if strings.Contains(err.Error(), "no encryption") && c.tls.mode == "disable" {
			return &errs.ConfigError{Msg: fmt.Sprintf("%s: PostgreSQL at %s accepts user %q only over TLS", what, c.where(), user),
				Fix: "use sslmode=verify-full with sslrootcert=/path/ca.pem (and sslcert=, sslkey= when it asks for a client certificate)", Err: err}
		}
		fallthrough
	case "28P01":
		return &errs.ConfigError{Msg: fmt.Sprintf("%s: authentication failed for user %q at %s", what, user, c.where()), Fix: "check the user and password in the URL (and pg_hba.conf)", Err: err}
	case "3D000":
		return &errs.ConfigError{Msg: fmt.Sprintf("%s: database %q does not exist at %s:%d", what, c.cfg.ConnConfig.Database, c.cfg.ConnConfig.Host, c.cfg.ConnConfig.Port), Fix: "check the database name in the URL, or create it", Err: err}
	case "42501":
		return &errs.ConfigError{Msg: fmt.Sprintf("%s: permission denied for user %q", what, user), Fix: "grant the privilege named in the message (GRANT SELECT ON ... TO " + user + ")", Err: err}
	case "42P01":
		return &errs.ConfigError{Msg: fmt.Sprintf("%s: a table is missing at %s", what, c.where()), Fix: "the table was dropped or renamed; exclude it with --tables or start the flow over with --restart", Err: err}
	case "55000":
		if strings.Contains(err.Error(), "wal_level") {
			// No context here to tell the service: the preflight, which
			// runs first, gives the managed services' advice.
			return walLevelError(c.where(), plainPostgres, "", err)
		}
	case "53300":
		return &errs.ConfigError{Msg: fmt.Sprintf("%s: %s has no free connection slots", what, c.where()), Fix: "raise max_connections or lower --parallel", Err: err}
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) && sqlState(err) == "" {
		// At start-up a configuration problem; later, an outage the engine
		// may wait out: the ConfigError wraps an Unavailable error for that.
		return &errs.ConfigError{Msg: fmt.Sprintf("%s: cannot reach PostgreSQL at %s:%d", what, c.cfg.ConnConfig.Host, c.cfg.ConnConfig.Port), Fix: "check the host and port in the URL and that the server is running and accepts TCP connections", Err: errs.Unavailable(err)}
	}
	err = fmt.Errorf("%s at %s: %w", what, c.where(), err)
	if lostConnection(err) {
		return errs.Unavailable(err)
	}
	return err
}

// lostConnection reports an error meaning the server is out of reach or the
// connection broke: the server shutting down or restarting (SQLSTATE 57P01,
// 57P02, 57P03), a connection exception (class 08), a refused or reset
// connection, an unexpected end of the stream, a connection already closed.
// Retrying on a new connection may succeed.
func lostConnection(err error) bool {
	if st := sqlState(err); st != "" {
		return st == "57P01" || st == "57P02" || st == "57P03" || strings.HasPrefix(st, "08")
	}
	var ce *pgconn.ConnectError
	return errors.As(err, &ce) || errors.Is(err, pgconn.ErrConnClosed) || errs.BrokenConnection(err)
}
