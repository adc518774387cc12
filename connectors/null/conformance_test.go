package null_test

import (
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/connector/conformance"
	"github.com/ferrydb/ferry/connectors/null"
)

// null keeps nothing: the suite checks what it counted.
func TestConformanceDestination(t *testing.T) {
	conformance.Destination(t, conformance.DestinationHarness{
		Open: func(*testing.T) connector.Destination { return &null.Destination{} },
	})
}
