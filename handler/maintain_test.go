package handler

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushpin-go/pushpin/proto/grip"
	"github.com/pushpin-go/pushpin/proto/publish"
	"github.com/pushpin-go/pushpin/proto/zhttp"
)

// These tests drive maintain with a simulated clock and hold the engine's
// output against a model of the rules themselves (keep-alive 44 s after
// the last packet out, expiry past 60 s without a packet in, Grip-Keep-Alive
// timeout - 1 s after the last data or keep-alive), tick by tick, with
// ticks of irregular spacing: two in one second, jumps of many seconds.
// Timestamps are only ever moved forward, as traffic moves them.

type sentPacket struct {
	to string
	p  *zhttp.Packet
}

// recEngine is a sync engine whose output keeps each packet's address.
func recEngine() (*engine, *[]sentPacket) {
	var out []sentPacket
	e := newEngine("h1", zerolog.Nop(), func(f []byte) {
		addr, msg, err := zhttp.SplitPub(f)
		if err != nil {
			panic(err)
		}
		p, err := zhttp.ParseMessage(msg)
		if err != nil {
			panic(err)
		}
		out = append(out, sentPacket{string(addr), p})
	}, nil, 20)
	return e, &out
}

// simBase is the first whole wheel second after now: simulated times are
// at known places in the wheel's seconds, and later than every timestamp
// the accepts set.
func simBase(e *engine) time.Time {
	return e.wheel.epoch.Add(time.Duration(e.wheel.second(time.Now())+1) * time.Second)
}

func at(base time.Time, sec float64) time.Time {
	return base.Add(time.Duration(sec * float64(time.Second)))
}

// schedule returns tick times (seconds after base) from first to past
// last, stepping through steps in turn.
func schedule(first, last float64, steps ...float64) []float64 {
	var ys []float64
	for i, y := 0, first; y <= last; i++ {
		ys = append(ys, y)
		y += steps[i%len(steps)]
	}
	return ys
}

// Keep-alives go out at the first tick 44 s (45 s less 1 s slack) after
// each session's last packet out, for sessions whose clocks differ,
// batched in list form per connection manager up to maxKeepAliveIDs, one
// packet each for sessions that are not multi, with continuous seqs.
func TestMaintainKeepAliveSchedule(t *testing.T) {
	t.Parallel()
	e, out := recEngine()
	r := rand.New(rand.NewPCG(3, 4))
	type model struct {
		s       *session
		lastOut time.Time
		seq     int64
	}
	var ms []*model
	add := func(sender, id string, multi bool) *model {
		a := mdataAccept(sender, id, 1<<20, true)
		a.Sessions[0].Multi = multi
		e.accept(a)
		m := &model{s: e.sessions[sessionKey{sender, id}]}
		ms = append(ms, m)
		return m
	}
	for i := range 150 {
		add(fmt.Sprintf("cm%d", 1+i%2), fmt.Sprintf("r%d", i), true)
	}
	for i := range 20 {
		add("condure", fmt.Sprintf("single%d", i), false)
	}
	var same []*model // one second, one sender: more than one list packet
	for i := range 200 {
		same = append(same, add("cm3", fmt.Sprintf("same%d", i), true))
	}
	*out = nil
	base := simBase(e)
	for i, m := range ms {
		off := at(base, float64(r.IntN(44000))/1000)
		if i >= len(ms)-len(same) {
			off = at(base, 12.25)
		}
		m.s.lastOut, m.s.lastIn, m.lastOut, m.seq = off, off, off, m.s.outSeq
	}
	kept := map[string]bool{}
	for _, y := range schedule(0.3, 150, 1, 1, 0.45, 0.55, 1, 6.2, 1, 0.4, 0.6, 1, 13.3, 1) {
		now := at(base, y)
		for range 5 { // traffic since the last tick moves lastOut on
			m := ms[r.IntN(len(ms))]
			m.s.lastOut, m.lastOut = now.Add(-100*time.Millisecond), now.Add(-100*time.Millisecond)
		}
		e.maintain(now)
		want := map[string]int64{}
		perSender := map[string]int{}
		for _, m := range ms {
			if now.Sub(m.lastOut) >= 44*time.Second {
				want[m.s.id] = m.seq
				m.seq++
				m.lastOut = now
				if m.s.multi {
					perSender[m.s.sender]++
				}
			}
		}
		got := map[string]int64{}
		lists := map[string]int{}
		for _, sp := range *out {
			p := sp.p
			if p.Type != zhttp.KeepAlive {
				t.Fatalf("at %.2fs: unexpected %+v", y, p)
			}
			if len(p.IDs) == 0 {
				if s := e.sessions[sessionKey{sp.to, p.ID}]; s == nil || s.multi {
					t.Fatalf("at %.2fs: single keep-alive for %s/%s", y, sp.to, p.ID)
				}
				got[p.ID] = p.Seq
				continue
			}
			if len(p.IDs) > maxKeepAliveIDs || !p.Ext.Multi {
				t.Fatalf("at %.2fs: list keep-alive of %d ids, multi %v", y, len(p.IDs), p.Ext.Multi)
			}
			lists[sp.to]++
			for _, x := range p.IDs {
				if s := e.sessions[sessionKey{sp.to, x.ID}]; s == nil || !s.multi {
					t.Fatalf("at %.2fs: %s listed in a keep-alive to %s", y, x.ID, sp.to)
				}
				if _, dup := got[x.ID]; dup {
					t.Fatalf("at %.2fs: %s kept alive twice", y, x.ID)
				}
				got[x.ID] = x.Seq
			}
		}
		*out = nil
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("at %.2fs: keep-alives (id:seq) %v, want %v", y, got, want)
		}
		for sender, n := range perSender {
			if lists[sender] != (n+maxKeepAliveIDs-1)/maxKeepAliveIDs {
				t.Fatalf("at %.2fs: %d sessions of %s in %d packets", y, n, sender, lists[sender])
			}
		}
		for id := range got {
			kept[id] = true
		}
		for _, m := range ms {
			if !m.s.multi && m.lastOut.Equal(now) {
				m.s.lastOut = now // what the real clock would have read when it was sent
			}
			m.s.lastIn = now
		}
		checkWheel(t, &e.wheel, e)
	}
	if len(kept) < len(ms)*9/10 { // the traffic spares a few
		t.Fatalf("only %d of %d sessions kept alive in 150 s", len(kept), len(ms))
	}
}

// A session expires at the first tick more than 60 s after its last
// packet in (not at exactly 60 s), and not before; a clock jump past the
// whole wheel expires every session at once.
func TestMaintainExpiry(t *testing.T) {
	t.Parallel()
	e, _ := recEngine()
	r := rand.New(rand.NewPCG(5, 6))
	lastIn := map[string]time.Time{}
	for i := range 120 {
		e.accept(mdataAccept("cm1", fmt.Sprintf("x%d", i), 1<<20, true))
	}
	for i := range 10 {
		e.accept(mdataAccept("cm1", fmt.Sprintf("kept%d", i), 1<<20, true))
	}
	e.accept(mdataAccept("cm1", "exact", 1<<20, true))
	base := simBase(e)
	for k, s := range e.sessions {
		s.lastIn = at(base, float64(r.IntN(50000))/1000)
		if k.id == "exact" {
			s.lastIn = at(base, 10)
		}
		lastIn[k.id] = s.lastIn
	}
	ys := schedule(0.5, 69.5, 1, 1, 0.45, 1, 3.1, 1, 0.4, 1, 7.7)
	ys = append(ys, 70, 70.45)
	ys = append(ys, schedule(71, 125, 1, 2.5, 0.45, 1)...)
	for _, y := range ys {
		now := at(base, y)
		e.maintain(now)
		for id, in := range lastIn {
			kept := len(id) > 4 && id[:4] == "kept"
			s := e.sessions[sessionKey{"cm1", id}]
			if want := kept || now.Sub(in) <= 60*time.Second; want != (s != nil) {
				t.Fatalf("at %.2fs: %s (last in %.3fs ago) held %v, want %v", y, id, now.Sub(in).Seconds(), s != nil, want)
			}
			if kept {
				s.lastIn = now
			}
		}
		checkWheel(t, &e.wheel, e)
	}
	if n, _ := e.counts(); n != 10 {
		t.Fatalf("%d sessions left, want the 10 kept", n)
	}
	e.maintain(at(base, 125+300))
	if n, c := e.counts(); n != 0 || c != 0 || e.wheel.len() != 0 {
		t.Fatalf("after a 5 min jump: %d sessions, %d channels, %d in the wheel", n, c, e.wheel.len())
	}
}

// A jump of more than the wheel's span looks at every session once: with
// a long expiry, each gets one keep-alive per jump.
func TestMaintainClockJump(t *testing.T) {
	t.Parallel()
	e, out := recEngine()
	e.expiry = time.Hour
	r := rand.New(rand.NewPCG(7, 8))
	for i := range 300 {
		e.accept(mdataAccept(fmt.Sprintf("cm%d", i%3), fmt.Sprintf("j%d", i), 1<<20, true))
	}
	base := simBase(e)
	for _, s := range e.sessions {
		s.lastOut = at(base, float64(r.IntN(44000))/1000)
	}
	*out = nil
	for _, y := range []float64{100, 100 + 44, 100 + 44 + 90} {
		e.maintain(at(base, y))
		seen := map[string]bool{}
		for _, sp := range *out {
			for _, x := range sp.p.IDs {
				if seen[x.ID] {
					t.Fatalf("at %.0fs: %s twice", y, x.ID)
				}
				seen[x.ID] = true
			}
		}
		*out = nil
		if len(seen) != 300 {
			t.Fatalf("at %.0fs: %d of 300 sessions kept alive", y, len(seen))
		}
		checkWheel(t, &e.wheel, e)
	}
}

// Grip-Keep-Alive: interval mode fires every timeout - 1 s whatever data
// goes out, idle mode that long after the last data, and a keep-alive set
// on a session that had none (as an instruct would) fires on time,
// though the session was bucketed for its zhttp keep-alive 44 s away.
func TestMaintainGripKeepAlive(t *testing.T) {
	t.Parallel()
	e, out := recEngine()
	for id, ka := range map[string]string{
		"intv": `:\n; format=cstring; timeout=5; mode=interval`,
		"idle": `:\n; format=cstring; timeout=5`,
		"late": "",
	} {
		a := mdataAccept("cm1", id, 1<<20, true)
		if ka != "" {
			a.Response.Headers = append(a.Response.Headers, zhttp.Header{Name: "Grip-Keep-Alive", Value: ka})
		}
		e.accept(a)
	}
	type model struct {
		s                *session
		lastData, lastKA time.Time
	}
	base := simBase(e)
	ms := map[string]*model{}
	for k, s := range e.sessions {
		s.lastData, s.lastKA = base, base
		ms[k.id] = &model{s: s, lastData: base, lastKA: base}
	}
	if ms["intv"].s.ka == nil || ms["intv"].s.ka.Mode != grip.KeepAliveInterval || ms["idle"].s.ka == nil || ms["late"].s.ka != nil {
		t.Fatalf("Grip-Keep-Alive headers not parsed as meant")
	}
	*out = nil
	fired := 0
	for k, y := range schedule(0.5, 45, 1, 1, 1, 0.4, 0.6) {
		now := at(base, y)
		if k == 12 {
			ms["late"].lastData = now.Add(-300 * time.Millisecond)
			ms["late"].s.lastData = ms["late"].lastData
			e.setKeepAlive(ms["late"].s, &grip.KeepAlive{Data: []byte(":\n"), Timeout: 3})
		}
		if k%7 == 3 { // a publish went out since the last tick
			for _, m := range ms {
				m.lastData, m.s.lastData = now.Add(-200*time.Millisecond), now.Add(-200*time.Millisecond)
			}
		}
		e.maintain(now)
		var want []string
		for id, m := range ms {
			ka := m.s.ka
			if ka == nil {
				continue
			}
			since := m.lastData
			if ka.Mode == grip.KeepAliveInterval {
				since = m.lastKA
			}
			if now.Sub(since) >= time.Duration(ka.Timeout-1)*time.Second {
				want = append(want, id)
				m.lastData, m.lastKA = now, now
			}
		}
		var got []string
		for _, sp := range *out {
			if sp.p.Type == zhttp.Data {
				if string(sp.p.Body) != ":\n" {
					t.Fatalf("at %.1fs: data %q", y, sp.p.Body)
				}
				got = append(got, sp.p.ID)
			}
		}
		*out = nil
		sort.Strings(want)
		sort.Strings(got)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("at %.1fs: Grip-Keep-Alive to %v, want %v", y, got, want)
		}
		fired += len(got)
		for _, m := range ms {
			m.s.lastIn, m.s.lastOut = now, now
		}
		checkWheel(t, &e.wheel, e)
	}
	if fired < 15 {
		t.Fatalf("only %d Grip-Keep-Alives in 45 s", fired)
	}
}

// Sessions ended by a cancel, a close publish, a replacing handoff, a
// failed hold or expiry get no packet from maintain afterwards, are not
// touched, and the wheel holds none of them, at once and after turns.
func TestMaintainEndedUntouched(t *testing.T) {
	t.Parallel()
	e, out := recEngine()
	for _, id := range []string{"cancel", "closed", "replaced", "live", "expired"} {
		a := mdataAccept("cm1", id, 1<<20, true)
		if id == "closed" {
			a.Channels = []string{"closeme"}
		}
		e.accept(a)
	}
	failed := mdataAccept("cm1", "failed", 1<<20, true)
	failed.Response.Headers = zhttp.Headers{{Name: "Content-Type", Value: "text/plain"}} // no Grip-Hold
	e.accept(failed)
	var ended []*session
	for _, id := range []string{"cancel", "closed", "replaced"} {
		ended = append(ended, e.sessions[sessionKey{"cm1", id}])
	}
	e.onPacket(&zhttp.Packet{From: "cm1", ID: "cancel", Type: zhttp.Cancel})
	e.publish(&publish.Item{Channel: "closeme", HTTPStream: &publish.HTTPStream{Action: publish.ActionClose}})
	again := mdataAccept("cm1", "replaced", 1<<20, true)
	again.Sessions[0].OutSeq = 100
	e.accept(again)
	seqs := map[*session]int64{}
	for _, s := range ended {
		if s.wheelAt != 0 || e.sessions[s.key] == s {
			t.Fatalf("ended session %s still held (wheel %d)", s.id, s.wheelAt)
		}
		seqs[s] = s.outSeq
	}
	checkWheel(t, &e.wheel, e)
	expired := e.sessions[sessionKey{"cm1", "expired"}]
	base := simBase(e)
	*out = nil
	var expiredAt float64
	for _, y := range schedule(0.5, 200, 1, 1, 0.4, 0.6, 5) {
		now := at(base, y)
		e.maintain(now)
		for _, sp := range *out {
			ids := []zhttp.IDSeq{{ID: sp.p.ID, Seq: sp.p.Seq}}
			if len(sp.p.IDs) > 0 {
				ids = sp.p.IDs
			}
			for _, x := range ids {
				switch {
				case x.ID == "cancel", x.ID == "closed", x.ID == "failed",
					x.ID == "replaced" && x.Seq < 100, x.ID == "expired" && expiredAt > 0:
					t.Fatalf("at %.1fs: packet to ended session %s: %+v", y, x.ID, sp.p)
				}
			}
		}
		*out = nil
		if expiredAt == 0 && e.sessions[expired.key] == nil {
			expiredAt = y
		}
		for _, s := range e.sessions {
			if s != expired {
				s.lastIn = now
			}
		}
		checkWheel(t, &e.wheel, e)
	}
	for s, seq := range seqs {
		if s.outSeq != seq || s.wheelAt != 0 {
			t.Fatalf("ended session %s touched: seq %d→%d, wheel %d", s.id, seq, s.outSeq, s.wheelAt)
		}
	}
	if expiredAt == 0 || expired.wheelAt != 0 {
		t.Fatalf("session without packets in did not expire (wheel %d)", expired.wheelAt)
	}
	if n, _ := e.counts(); n != 2 || e.sessions[sessionKey{"cm1", "live"}] == nil || e.sessions[sessionKey{"cm1", "replaced"}].outSeq <= 100 {
		t.Fatalf("want live and replaced held and kept alive, have %d sessions", n)
	}
}

// Grip-Keep-Alive comes from the maintenance pass: idle mode only after a
// quiet period since the last data, interval mode at a fixed period.
func TestGripKeepAliveSweep(t *testing.T) {
	t.Parallel()
	e, c := syncEngine()
	e.accept(mdataAccept("cm1", "idle", 1<<20, true))
	e.accept(mdataAccept("cm1", "intv", 1<<20, true))
	e.setKeepAlive(e.sessions[sessionKey{"cm1", "idle"}], &grip.KeepAlive{Data: []byte(":\n"), Timeout: 20, Mode: grip.KeepAliveIdle})
	e.setKeepAlive(e.sessions[sessionKey{"cm1", "intv"}], &grip.KeepAlive{Data: []byte(":\n"), Timeout: 20, Mode: grip.KeepAliveInterval})
	c.take()
	start := time.Now()
	got := func(at time.Duration) string {
		e.maintain(start.Add(at))
		var ids []string
		for _, p := range c.take() {
			if p.Type == zhttp.Data {
				ids = append(ids, p.ID)
			}
		}
		sort.Strings(ids)
		return fmt.Sprint(ids)
	}
	if s := got(10 * time.Second); s != "[]" {
		t.Fatalf("at 10s: %s", s)
	}
	// Data at 15s resets idle mode only.
	e.sessions[sessionKey{"cm1", "idle"}].lastData = start.Add(15 * time.Second)
	e.sessions[sessionKey{"cm1", "intv"}].lastData = start.Add(15 * time.Second)
	if s := got(19500 * time.Millisecond); s != "[intv]" {
		t.Fatalf("at 19.5s: %s", s)
	}
	if s := got(30 * time.Second); s != "[]" {
		t.Fatalf("at 30s: %s", s)
	}
	if s := got(34500 * time.Millisecond); s != "[idle]" {
		t.Fatalf("at 34.5s: %s", s)
	}
	if s := got(39 * time.Second); s != "[intv]" {
		t.Fatalf("at 39s: %s", s)
	}
}

// On a running engine (its own ticker), keep-alives toward a multi client
// go out batched as list-form ids.
func TestKeepAliveBatchedOnRunningEngine(t *testing.T) {
	t.Parallel()
	e, c := runEngine(t)
	e.keepAliveEvery = time.Second
	for i := 0; i < 3; i++ {
		id := fmt.Sprintf("k%d", i)
		e.post(func() { e.accept(streamAccept(id, 8192)) })
	}
	pk := c.wait(t, 7)
	last := pk[len(pk)-1]
	if last.Type != zhttp.KeepAlive || len(last.IDs) != 3 {
		t.Fatalf("want one keep-alive for 3 ids, got %+v", last)
	}
}
