package file

import (
	"bytes"
	"io"
	"testing"

	"github.com/ferrydb/ferry/model"
)

func TestCSVReader(t *testing.T) {
	type rec = []csvField
	for _, tc := range []struct {
		in   string
		want []rec
	}{
		{"a,b\n", []rec{{{s: "a"}, {s: "b"}}}},
		{"a,b", []rec{{{s: "a"}, {s: "b"}}}},
		{"a,b\r\n,\"\"\r\n", []rec{{{s: "a"}, {s: "b"}}, {{}, {s: "", quoted: true}}}},
		{"\n", []rec{{{}}}},
		{"\"x\ny\",\"q\"\"\"\n", []rec{{{s: "x\ny", quoted: true}, {s: "q\"", quoted: true}}}},
		{"\"in\r\nside\"\r\n", []rec{{{s: "in\r\nside", quoted: true}}}},
		{"a\rb,\x00\n", []rec{{{s: "a\rb"}, {s: "\x00"}}}},
		{",\n", []rec{{{}, {}}}},
	} {
		r := newCSVReader(bytes.NewReader([]byte(tc.in)))
		var got []rec
		for {
			fs, err := r.read()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%q: %v", tc.in, err)
			}
			got = append(got, append(rec(nil), fs...))
		}
		if len(got) != len(tc.want) {
			t.Errorf("%q: got %+v, want %+v", tc.in, got, tc.want)
			continue
		}
		for i := range got {
			if len(got[i]) != len(tc.want[i]) {
				t.Errorf("%q: record %d is %+v, want %+v", tc.in, i, got[i], tc.want[i])
				continue
			}
			for j := range got[i] {
				if got[i][j] != tc.want[i][j] {
					t.Errorf("%q: record %d field %d is %+v, want %+v", tc.in, i, j, got[i][j], tc.want[i][j])
				}
			}
		}
		if r.offset() != int64(len(tc.in)) {
			t.Errorf("%q: consumed %d bytes", tc.in, r.offset())
		}
	}
}

// FuzzCSVRoundTrip: any fields, NULL or not, read back as written.
func FuzzCSVRoundTrip(f *testing.F) {
	f.Add("a", "", true, false)
	f.Add("x,\"y\"\r\n", "\n", false, false)
	f.Add("", "\"", false, true)
	f.Fuzz(func(t *testing.T, a, b string, aNull, bNull bool) {
		fields := []csvField{{s: a, quoted: true}, {s: b, quoted: true}}
		if aNull {
			fields[0] = csvField{}
		}
		if bNull {
			fields[1] = csvField{}
		}
		var buf []byte
		for i, fl := range fields {
			if i > 0 {
				buf = append(buf, ',')
			}
			if !fl.isNull() {
				buf = appendCSVField(buf, fl.s)
			}
		}
		buf = append(buf, '\n')
		r := newCSVReader(bytes.NewReader(buf))
		got, err := r.read()
		if err != nil {
			t.Fatalf("%q: %v", buf, err)
		}
		if len(got) != 2 {
			t.Fatalf("%q: %d fields", buf, len(got))
		}
		for i := range fields {
			if got[i].isNull() != fields[i].isNull() || got[i].s != fields[i].s {
				t.Errorf("%q: field %d read as %+v, written %+v", buf, i, got[i], fields[i])
			}
		}
		if _, err := r.read(); err != io.EOF {
			t.Errorf("%q: more after the record: %v", buf, err)
		}
	})
}

// FuzzJSONLString: any valid UTF-8 text survives a JSON Lines round trip
// on one line.
func FuzzJSONLString(f *testing.F) {
	f.Add("plain")
	f.Add("\x00\n\r\t\"\\<>&\u2028🎉")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := appendJSONString(nil, s)
		if err != nil {
			return // invalid UTF-8 is refused
		}
		if bytes.ContainsAny(b, "\r\n") {
			t.Fatalf("%q encoded over several lines: %q", s, b)
		}
		v, err := decodeJSONValue(typ(model.KindText), b)
		if err != nil || v != s {
			t.Fatalf("%q: read back %q, %v", s, v, err)
		}
	})
}
