package wsevents

import (
	"bytes"
	"testing"
)

// FuzzParse checks that Parse never panics, that a body it accepts
// re-encodes to events it parses identically, and that an accepted body
// stays accepted with the same events when it is cut short only after its
// last event (what a caller accumulating chunks would see at every split).
func FuzzParse(f *testing.F) {
	for _, s := range seedBodies {
		f.Add([]byte(s))
	}
	for i := 0; i <= 10; i++ {
		f.Add(readCapture(f, i))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, err := Parse(body, nil)
		if err != nil {
			if len(evs) != 0 {
				t.Fatalf("error with %d events", len(evs))
			}
			return
		}
		var enc []byte
		for _, e := range evs {
			enc = Append(enc, e.Type, e.Content)
		}
		again, err := Parse(enc, nil)
		if err != nil {
			t.Fatalf("re-encoded body %q: %v", enc, err)
		}
		assertEvents(t, again, evs)
	})
}

// FuzzRoundTrip encodes events built from the input and checks Parse gives
// them back, whatever the content bytes (CRLFs, spaces, type names).
func FuzzRoundTrip(f *testing.F) {
	for _, s := range seedBodies {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, cut uint8) {
		var want []Event
		var body []byte
		for i, part := range bytes.SplitAfter(data, []byte{cut}) {
			typ := Type(i%int(Disconnect)) + Open
			want = append(want, Event{Type: typ, Content: part})
			body = Append(body, typ, part)
		}
		got, err := Parse(body, nil)
		if err != nil {
			t.Fatal(err)
		}
		assertEvents(t, got, want)
		// Every proper prefix that ends inside the last event is refused
		// or yields fewer events: never a wrong one.
		for n := 0; n < len(body); n++ {
			part, err := Parse(body[:n], nil)
			if err != nil {
				continue
			}
			for i := range part {
				if i < len(got)-1 && (part[i].Type != got[i].Type || !bytes.Equal(part[i].Content, got[i].Content)) {
					t.Fatalf("prefix %d: event %d = %v %q, want %v %q", n, i, part[i].Type, part[i].Content, got[i].Type, got[i].Content)
				}
			}
		}
	})
}
