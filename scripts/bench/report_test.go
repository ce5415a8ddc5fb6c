package main

import (
	"errors"
	"strings"
	"testing"
)

func TestReportMarkdown(t *testing.T) {
	r := newReport()
	r.set(targetPushpin, "passthrough", "req/s", "%.0f", higherBetter, 2000)
	r.set(targetOurs, "passthrough", "req/s", "%.0f", higherBetter, 5000)
	r.set(targetOurs, "passthrough", "p50 (ms)", "%.2f", lowerBetter, 1.5)
	r.set(targetPushpin, "fanout", "lost", "%.0f", lowerBetter, 0)
	r.set(targetOurs, "fanout", "lost", "%.0f", lowerBetter, 3)
	r.fail(targetOurs, "channels", errors.New("publish: status 500 | boom\nsecond line"))

	var b strings.Builder
	r.markdown(&b)
	want := `| scenario | metric | ours | pushpin 1.36 | ours/pushpin |
|---|---|---:|---:|---:|
| passthrough | req/s ↑ | 5000 | 2000 | 2.50 |
| passthrough | p50 (ms) ↓ | 1.50 | — |  |
| fanout | lost ↓ | 3 | 0 |  |
| channels | error | error: publish: status 500 / boom second line | — |  |

↑ higher is better, ↓ lower is better; ratio = ours / pushpin.
`
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	if len(r.errors) != 1 || !strings.Contains(r.errors[0], "ours channels: publish") {
		t.Fatalf("errors %q", r.errors)
	}
}

func TestReportKeepsFirstSetOrderAndOverwrites(t *testing.T) {
	r := newReport()
	r.set(targetOurs, "b", "m", "%.0f", neutral, 1)
	r.set(targetOurs, "a", "m", "%.0f", neutral, 2)
	r.set(targetOurs, "b", "m", "%.0f", neutral, 3)
	if len(r.rows) != 2 || r.rows[0].scenario != "b" || r.rows[0].cells[targetOurs].v != 3 {
		t.Fatalf("rows %+v", r.rows)
	}
}

func TestReportTruncatesLongErrors(t *testing.T) {
	r := newReport()
	r.fail(targetPushpin, "startup", errors.New(strings.Repeat("x", 500)))
	c := r.rows[0].cells[targetPushpin]
	if len([]rune(c.err)) != 121 || len(r.errors[0]) < 500 {
		t.Fatalf("table text %d runes, full error %d bytes", len([]rune(c.err)), len(r.errors[0]))
	}
}
