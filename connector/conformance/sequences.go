package conformance

import (
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// checkSequences: a SequenceWriter returns a sequence it does not have in
// missing, without an error and without creating it (the schema step makes
// it later), as often as it is asked.
func checkSequences(t *testing.T, h DestinationHarness) {
	d := openDest(t, h)
	w, ok := d.(connector.SequenceWriter)
	if !ok {
		t.Skip("not a SequenceWriter")
	}
	absent := connector.Sequence{Name: model.Namespace{Schema: h.Schema, Table: "conf_no_such_seq"}, Value: 5, Called: true}
	for i := range 2 {
		missing, err := w.SetSequences(ctxFor(t), []connector.Sequence{absent})
		if err != nil {
			t.Fatalf("SetSequences of a sequence the destination lacks, time %d: %v", i+1, err)
		}
		if len(missing) != 1 || missing[0].Name != absent.Name {
			t.Fatalf("SetSequences of %s, which the destination lacks: missing %+v", absent.Name, missing)
		}
	}
	r, ok := d.(connector.SequenceReader)
	if !ok {
		return
	}
	have, err := r.Sequences(ctxFor(t), []string{h.Schema})
	if err != nil {
		t.Fatalf("Sequences: %v", err)
	}
	for _, s := range have {
		if s.Name == absent.Name {
			t.Fatalf("SetSequences created %s", absent.Name)
		}
	}
}
