package fake

import (
	"fmt"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/connector/conformance"
	"github.com/ferrydb/ferry/model"
)

// The fake database makes its own changes after T0; the suite checks their
// positions, and TestStreamReachesExpectedState what they do.
func TestConformanceSource(t *testing.T) {
	conformance.Source(t, conformance.SourceHarness{
		Open: func(t *testing.T, n int) (connector.Source, model.Namespace) {
			s := open(t, fmt.Sprintf("fake://?tables=1&rows=%d&changes=50&seed=3", n))
			tables, err := s.Tables(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			return s, tables[0].Namespace
		},
	})
}
