package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// memUse is memory summed over a process tree, and per program role.
type memUse struct {
	Procs    int
	RSS, PSS int64 // bytes
	ByRole   map[string]memUse
}

// Program roles, in report order; the executables of both targets map to them.
var roleOrder = []string{"connmgr", "proxy", "handler", "zurl", "runner"}

var roleOf = map[string]string{
	"condure": "connmgr", "pushpin-connmgr": "connmgr",
	"pushpin-proxy": "proxy", "pushpin-handler": "handler",
	"zurl": "zurl", "pushpin-zurl": "zurl",
	"pushpin": "runner",
}

// procRole names what process pid is, from its executable's name.
func procRole(pid int) string {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return "other"
	}
	base := filepath.Base(strings.TrimSuffix(exe, " (deleted)"))
	if r, ok := roleOf[base]; ok {
		return r
	}
	return base
}

// roles lists the roles present, known ones first in roleOrder.
func (m memUse) roles() []string {
	var out []string
	for _, r := range roleOrder {
		if _, ok := m.ByRole[r]; ok {
			out = append(out, r)
		}
	}
	var rest []string
	for r := range m.ByRole {
		if !slices.Contains(roleOrder, r) {
			rest = append(rest, r)
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

// treePids returns roots and all their descendants, found through the ppid
// field of /proc/<pid>/stat (the runner's children, condure's workers).
func treePids(roots []int) []int {
	parent := map[int]int{}
	ents, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, e := range ents {
		b, err := os.ReadFile(e)
		if err != nil {
			continue
		}
		pid, ppid, ok := parseStat(b)
		if ok {
			parent[pid] = ppid
		}
	}
	in := map[int]bool{}
	for _, r := range roots {
		in[r] = true
	}
	// Repeat until nothing is added: the map has no order, so a child may be
	// seen before its parent joined the set.
	for changed := true; changed; {
		changed = false
		for pid, pp := range parent {
			if !in[pid] && in[pp] {
				in[pid] = true
				changed = true
			}
		}
	}
	out := make([]int, 0, len(in))
	for p := range in {
		out = append(out, p)
	}
	return out
}

// treeCPU is the CPU time (clock ticks, user+system) used so far by roots
// and their descendants.
func treeCPU(roots []int) int64 {
	var ticks int64
	for _, t := range cpuByRole(roots) {
		ticks += t
	}
	return ticks
}

// cpuByRole is treeCPU split by program role.
func cpuByRole(roots []int) map[string]int64 {
	out := map[string]int64{}
	for _, pid := range treePids(roots) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		if t, ok := parseStatCPU(b); ok {
			out[procRole(pid)] += t
		}
	}
	return out
}

// parseStatCPU reads utime+stime (fields 14 and 15) from /proc/<pid>/stat.
func parseStatCPU(b []byte) (int64, bool) {
	j := bytes.LastIndexByte(b, ')')
	if j < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[j+1:])) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	return u + s, err1 == nil && err2 == nil
}

// parseStat reads pid and ppid from /proc/<pid>/stat; the command name sits
// in parentheses and may itself contain spaces or ')'.
func parseStat(b []byte) (pid, ppid int, ok bool) {
	i := bytes.IndexByte(b, ' ')
	j := bytes.LastIndexByte(b, ')')
	if i < 0 || j < 0 || j+4 > len(b) {
		return 0, 0, false
	}
	pid, err := strconv.Atoi(string(b[:i]))
	if err != nil {
		return 0, 0, false
	}
	f := strings.Fields(string(b[j+1:]))
	if len(f) < 2 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	return pid, ppid, err == nil
}

// statusKB returns a "Key:   N kB" field of a /proc file, in bytes.
func statusKB(path, key string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, key+":"); ok {
			fs := strings.Fields(rest)
			if len(fs) == 0 {
				break
			}
			n, err := strconv.ParseInt(fs[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s %s: %w", path, key, err)
			}
			return n * 1024, nil
		}
	}
	return 0, fmt.Errorf("%s: no %s", path, key)
}

// measureMem sums VmRSS and Pss (smaps_rollup; shared pages split between
// sharers, so the sum does not count the shared libraries four times).
func measureMem(roots []int) (memUse, error) {
	m := memUse{ByRole: map[string]memUse{}}
	for _, pid := range treePids(roots) {
		rss, err := statusKB(fmt.Sprintf("/proc/%d/status", pid), "VmRSS")
		if err != nil {
			continue // exited meanwhile, or a kernel thread
		}
		pss, err := statusKB(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss")
		if err != nil {
			return m, fmt.Errorf("pid %d: %w", pid, err)
		}
		m.Procs++
		m.RSS += rss
		m.PSS += pss
		role := procRole(pid)
		r := m.ByRole[role]
		r.Procs++
		r.RSS += rss
		r.PSS += pss
		m.ByRole[role] = r
	}
	if m.Procs == 0 {
		return m, fmt.Errorf("no live process among %v", roots)
	}
	return m, nil
}
