package main

import (
	"fmt"
	"io"
	"strings"
)

// Target names, which are also the report's value columns.
const (
	targetOurs    = "ours"
	targetPushpin = "pushpin"
)

// direction tells a reader which way a metric is good.
type direction int

const (
	higherBetter direction = iota
	lowerBetter
	neutral
)

func (d direction) mark() string {
	switch d {
	case higherBetter:
		return " ↑"
	case lowerBetter:
		return " ↓"
	}
	return ""
}

// cell is one target's figure for one metric: a number, a text (what was
// not measured and why) or an error text.
type cell struct {
	v    float64
	set  bool
	text string
	err  string
}

type row struct {
	scenario, metric, format string
	dir                      direction
	cells                    map[string]cell
}

// report collects figures of both targets, row order being first-set order,
// and renders them side by side.
type report struct {
	rows   []*row
	index  map[string]*row
	errors []string
	notes  []string // findings that are not failures, shown under the table
}

func newReport() *report { return &report{index: map[string]*row{}} }

func (r *report) row(scenario, metric, format string, dir direction) *row {
	key := scenario + "\x00" + metric
	if rw, ok := r.index[key]; ok {
		return rw
	}
	rw := &row{scenario: scenario, metric: metric, format: format, dir: dir, cells: map[string]cell{}}
	r.index[key] = rw
	r.rows = append(r.rows, rw)
	return rw
}

// set records target's figure v; format is a fmt verb such as "%.0f".
func (r *report) set(target, scenario, metric, format string, dir direction, v float64) {
	r.row(scenario, metric, format, dir).cells[target] = cell{v: v, set: true}
}

// text records a figure that is a sentence, e.g. why it was not measured.
func (r *report) text(target, scenario, metric, text string) {
	r.row(scenario, metric, "", neutral).cells[target] = cell{text: text}
}

// note records a finding about a scenario (connections not held, subscribers
// never reached) that the numbers alone do not explain.
func (r *report) note(target, scenario, msg string) {
	r.notes = append(r.notes, fmt.Sprintf("%s, %s: %s", target, scenario, msg))
}

// fail records that a scenario could not be measured for target.
func (r *report) fail(target, scenario string, err error) {
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	if len(msg) > 120 {
		msg = msg[:120] + "…"
	}
	r.row(scenario, "error", "", neutral).cells[target] = cell{err: msg}
	r.errors = append(r.errors, fmt.Sprintf("%s %s: %v", target, scenario, err))
}

func (c cell) render(format string) string {
	switch {
	case c.err != "":
		return "error: " + strings.ReplaceAll(c.err, "|", "/")
	case c.text != "":
		return strings.ReplaceAll(c.text, "|", "/")
	case !c.set:
		return "—"
	}
	return fmt.Sprintf(format, c.v)
}

// ratio is ours/pushpin, blank where either is missing or pushpin is zero.
func (rw *row) ratio() string {
	o, p := rw.cells[targetOurs], rw.cells[targetPushpin]
	if !o.set || !p.set || p.v == 0 {
		return ""
	}
	return fmt.Sprintf("%.2f", o.v/p.v)
}

// markdown writes the side-by-side table.
func (r *report) markdown(w io.Writer) {
	fmt.Fprintln(w, "| scenario | metric | ours | pushpin 1.36 | ours/pushpin |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|")
	for _, rw := range r.rows {
		fmt.Fprintf(w, "| %s | %s%s | %s | %s | %s |\n", rw.scenario, rw.metric, rw.dir.mark(),
			rw.cells[targetOurs].render(rw.format), rw.cells[targetPushpin].render(rw.format), rw.ratio())
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "↑ higher is better, ↓ lower is better; ratio = ours / pushpin.")
	if len(r.notes) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Notes:")
		for _, n := range r.notes {
			fmt.Fprintf(w, "- %s\n", strings.ReplaceAll(n, "\n", " "))
		}
	}
}
