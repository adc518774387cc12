package gctune

import (
	"os"
	"testing"
)

// unsetGOGC removes GOGC from the environment for the test.
func unsetGOGC(t *testing.T) {
	t.Helper()
	old, had := os.LookupEnv("GOGC")
	os.Unsetenv("GOGC")
	t.Cleanup(func() {
		if had {
			os.Setenv("GOGC", old)
		}
	})
}
