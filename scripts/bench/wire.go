package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// The worker protocol: the coordinator writes one JSON command per line on
// a worker's stdin, the worker answers each with one JSON reply line on its
// stdout (its logs go to stderr). A worker serves one set of connections:
//
//	open   → openReply    once every connection is held or has failed
//	status → statusReply  counters, polled while probing and draining
//	resume → statusReply  paused connections (wsConfig.Pause) are read again
//	finish → finishReply  final tallies; the connections are closed (reset)
//
// End of stdin makes the worker exit, closing everything it holds.
type wireCmd struct {
	Op   string   `json:"op"`
	Open *openCmd `json:"open,omitempty"`
}

const (
	opOpen   = "open"
	opStatus = "status"
	opFinish = "finish"
	opResume = "resume"
)

// openCmd is a worker's share: subscribers From..To-1 of a fleet.
type openCmd struct {
	Addr      string   `json:"addr"` // target, IPv4 host:port
	Srcs      []string `json:"srcs"` // source addresses; subscriber i uses Srcs[i%len]
	Path      string   `json:"path"` // "{i}" is replaced by the subscriber index
	From      int      `json:"from"`
	To        int      `json:"to"`
	Conc      int      `json:"conc"`       // opens in flight in this worker
	Loops     int      `json:"loops"`      // event loops (goroutines)
	K         int      `json:"k"`          // numbered messages each subscriber expects
	TimeoutNs int64    `json:"timeout_ns"` // per open
	FailLimit int      `json:"fail_limit"` // per loop: stop opening after this many failures
	ReachNs   int64    `json:"reach_ns"`   // deliveries within this are counted per message
	WS        wsConfig `json:"ws"`         // WebSocket sessions instead of stream holds
}

type wireReply struct {
	Err    string       `json:"err,omitempty"`
	Open   *openReply   `json:"open,omitempty"`
	Status *statusReply `json:"status,omitempty"`
	Finish *finishReply `json:"finish,omitempty"`
}

type openReply struct {
	Held     int      `json:"held"`
	Failed   int      `json:"failed"`
	Skipped  int      `json:"skipped"` // not tried after the failure limit
	FirstErr string   `json:"first_err,omitempty"`
	OpenLat  wireHist `json:"open_lat"` // open to "ok" received
	CPUNs    int64    `json:"cpu_ns"`   // the worker's CPU time so far
}

type statusReply struct {
	Probed      int64 `json:"probed"`       // receivers that saw a probe
	Done        int64 `json:"done"`         // receivers that have every numbered message
	Ended       int64 `json:"ended"`        // holds the target closed
	LastProbeNs int64 `json:"last_probe"`   // unix ns of the latest probe line
	CloseFrames int64 `json:"close_frames"` // connections the target closed with a close frame
	Delivered   int64 `json:"delivered"`    // numbered messages received so far
}

type finishReply struct {
	Counts      counts   `json:"counts"`
	Ended       int64    `json:"ended"`
	Lat         wireHist `json:"lat"`
	SeqMax      []int64  `json:"seq_max"`     // per message: slowest delivery, ns
	SeqWithin   []uint64 `json:"seq_within"`  // per message: deliveries within reach
	SeqCount    []uint64 `json:"seq_count"`   // per message: deliveries
	LastMsgNs   int64    `json:"last_msg"`    // unix ns of the latest numbered message
	Probes      int64    `json:"probes"`      // probe lines received
	RecvCPUNs   int64    `json:"recv_cpu_ns"` // CPU time before closing the connections
	CPUNs       int64    `json:"cpu_ns"`      // the worker's user+system time
	SysNs       int64    `json:"sys_ns"`      // of which system (loopback TCP runs in the sender's syscalls)
	LoopErr     string   `json:"loop_err,omitempty"`
	CloseCode   int      `json:"close_code,omitempty"`   // the first close frame's code
	CloseReason string   `json:"close_reason,omitempty"` // and reason
}

// wireConn is one end of the protocol over a pair of pipes.
type wireConn struct {
	r *bufio.Reader
	w io.Writer
}

func newWireConn(r io.Reader, w io.Writer) *wireConn {
	return &wireConn{r: bufio.NewReaderSize(r, 64<<10), w: w}
}

// send writes v as one line.
func (c *wireConn) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %T: %w", v, err)
	}
	if _, err := c.w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("writing to pipe: %w", err)
	}
	return nil
}

// recv reads one line into v; io.EOF when the other end closed cleanly.
func (c *wireConn) recv(v any) error {
	line, err := c.r.ReadBytes('\n')
	if err != nil {
		if errors.Is(err, io.EOF) && len(line) == 0 {
			return io.EOF
		}
		return fmt.Errorf("reading from pipe: %w", err)
	}
	if err := json.Unmarshal(line, v); err != nil {
		return fmt.Errorf("decoding %T from %.80q: %w", v, line, err)
	}
	return nil
}

// check validates an open command before anything is opened.
func (o *openCmd) check() (dst netip.AddrPort, srcs []netip.Addr, err error) {
	if dst, err = netip.ParseAddrPort(o.Addr); err != nil || !dst.Addr().Is4() {
		return dst, nil, fmt.Errorf("open: addr %q is not an IPv4 host:port", o.Addr)
	}
	for _, s := range o.Srcs {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return dst, nil, fmt.Errorf("open: source %q is not an IPv4 address", s)
		}
		srcs = append(srcs, a)
	}
	switch {
	case o.From < 0 || o.To < o.From:
		return dst, nil, fmt.Errorf("open: bad range [%d, %d)", o.From, o.To)
	case o.K < 0 || o.Conc < 1 || o.Loops < 1 || o.TimeoutNs <= 0:
		return dst, nil, fmt.Errorf("open: k %d, conc %d, loops %d, timeout %d: out of range", o.K, o.Conc, o.Loops, o.TimeoutNs)
	case !strings.HasPrefix(o.Path, "/"):
		return dst, nil, fmt.Errorf("open: path %q does not start with /", o.Path)
	}
	return dst, srcs, nil
}

// pathFunc expands the path template per subscriber.
func pathFunc(tmpl string) func(i int) string {
	before, after, found := strings.Cut(tmpl, "{i}")
	if !found {
		return func(int) string { return tmpl }
	}
	return func(i int) string { return before + strconv.Itoa(i) + after }
}
