package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// scenScale is the scale target: ScaleSubs held connections on one
// machine (ours with ScaleConnMgrs connection managers) and every publish
// reaching all of them within Reach. It runs on a stack started for it. A
// target that cannot hold that many is measured with what it held; the
// table says how many.
func scenScale(e *env) error {
	n, k := e.opt.ScaleSubs, e.opt.ScaleMsgs
	interval := e.opt.intervalFor(n)
	name := fmt.Sprintf("scale %d×%d @%v", n, k, interval)
	e.checkConntrack(n)
	idle, err := measureMem(e.st.pids())
	if err != nil {
		return fmt.Errorf("idle memory: %w", err)
	}
	f, open, err := e.openFleet(name, "/stream?ch=scale", n, k)
	if err != nil {
		return err
	}
	defer f.close()
	if err := f.renice(workerNice); err != nil {
		return err
	}
	e.set(name, "client workers' nice (see README)", "%.0f", neutral, workerNice)
	e.setOpen(name, open)
	if err := e.setMemory(name, idle, open.Held); err != nil {
		return err
	}
	var cpu []map[string]int64
	reached, fin, err := e.oneChannel(name, f, open.Held, "scale", "stream", k, interval,
		func() { cpu = append(cpu, cpuByRole(e.st.pids())) })
	if err != nil {
		return err
	}
	// Everything the target did from the first numbered message to the
	// last delivery, per delivery: the idle seconds between messages (the
	// periodic sweeps and keep-alives of 100,000 sessions) included.
	if len(cpu) == 2 {
		e.setCPU(name, "delivering", cpu[0], cpu[1], totalsOf(fin.Counts, k).Delivered)
	}
	if reached < open.Held {
		e.set(name, "subscribers reached by probe", "%.0f", higherBetter, float64(reached))
	}
	e.setFinish(name, open, fin, k, true)
	if k <= 5 {
		for s, d := range fin.SeqMax {
			e.set(name, fmt.Sprintf("message %d: slowest delivery (ms)", s+1), "%.1f", lowerBetter, float64(d)/1e6)
			e.set(name, fmt.Sprintf("message %d: receivers reached", s+1), "%.0f", higherBetter, float64(fin.SeqCount[s]))
		}
	}
	return nil
}

// checkConntrack warns when the connection tracking table (which tracks
// loopback too, when loaded) has no room for n more connections: a full
// table drops new connections' SYNs, which would show as failed opens.
func (e *env) checkConntrack(n int) {
	read := func(f string) (int, bool) {
		b, err := os.ReadFile("/proc/sys/net/netfilter/" + f)
		if err != nil {
			return 0, false
		}
		v, err := strconv.Atoi(strings.TrimSpace(string(b)))
		return v, err == nil
	}
	count, ok1 := read("nf_conntrack_count")
	limit, ok2 := read("nf_conntrack_max")
	if ok1 && ok2 && count+n+1000 > limit {
		e.log.Warn().Int("conntrack_count", count).Int("conntrack_max", limit).Int("wanted", n).
			Msg("the conntrack table may fill up: opens beyond it will fail (sysctl net.netfilter.nf_conntrack_max)")
	}
}

// workerNice is the scheduling niceness of the client workers while a
// fan-out is measured. Their receive latency is the kernel's timestamp of
// the data, taken when the target writes it, so a reader that runs later
// measures the same; at the same priority the readers (~5 µs of CPU a
// delivery, a third of the target's) take the CPU from the target's
// writes instead, on a machine where in real use the clients would be
// elsewhere. Nice 10 rather than 19 (or SCHED_IDLE): with other loads on
// the machine they still catch up between messages, before the next
// message's data would be read (and stamped) together with this one's.
const workerNice = 10

// renice sets every thread of the fleet's workers to niceness n (Linux
// nice is per thread; threads started later inherit it from their
// creator).
func (f *fleet) renice(n int) error {
	for _, w := range f.ws {
		pid := w.cmd.Process.Pid
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			return fmt.Errorf("renice worker %d: %w", pid, err)
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			if err := unix.Setpriority(unix.PRIO_PROCESS, tid, n); err != nil && err != unix.ESRCH {
				return fmt.Errorf("renice worker %d thread %d: %w", pid, tid, err)
			}
		}
	}
	return nil
}
