package verify_test

import (
	"os"
	"testing"

	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	mysqltest.StopShared()
	os.Exit(code)
}
