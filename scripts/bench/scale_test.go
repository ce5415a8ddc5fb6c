package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// renice reaches every thread of every worker, not just the main one
// (Linux nice is per thread).
func TestFleetRenice(t *testing.T) {
	srv, err := newFloorServer()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.close()
	spec := fleetSpec{Addr: srv.addr(), Path: "/x", N: 6, Conc: 2, Srcs: (&srcPool{}).take(1)}
	f, open, err := startFleet(t.Context(), spec, testClientOpts(t, 3), zerolog.Nop())
	defer f.close()
	if err != nil || open.Held != 6 || len(f.ws) != 2 {
		t.Fatalf("open %+v, %d workers: %v", open, len(f.ws), err)
	}
	if err := f.renice(workerNice); err != nil {
		t.Fatal(err)
	}
	for _, w := range f.ws {
		dir := fmt.Sprintf("/proc/%d/task", w.cmd.Process.Pid)
		tasks, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(tasks) < 2 {
			t.Fatalf("worker %d has %d threads", w.cmd.Process.Pid, len(tasks))
		}
		for _, task := range tasks {
			b, err := os.ReadFile(dir + "/" + task.Name() + "/stat")
			if err != nil {
				t.Fatal(err)
			}
			s := string(b)
			fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
			if nice, _ := strconv.Atoi(fields[16]); nice != workerNice {
				t.Errorf("worker %d thread %s: nice %d, want %d", w.cmd.Process.Pid, task.Name(), nice, workerNice)
			}
		}
	}
}
