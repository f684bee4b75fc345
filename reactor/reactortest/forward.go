package reactortest

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strait-proxy/strait/reactor"
)

const forwardSize = 16 << 20

// 4. A tiny L4 proxy built on the transport: the upstream is dialed near the downstream, bytes
// go from one conn's view straight into the other's Write, the source pauses while the
// destination is congested and resumes on OnWritable, half-closes are propagated.
func (s *suite) testForward(t *testing.T) {
	t.Run("Bulk", func(t *testing.T) { s.testForwardRun(t, false) })
	t.Run("SlowReaders", func(t *testing.T) { s.testForwardRun(t, true) })
}

// fwdPair is shared by a downstream and its upstream. Its plain fields are written from the
// callbacks of both connections and from the dial's done without locks: under -race, a report
// here means Dial(near) did not put the two on one executor.
type fwdPair struct {
	down, up reactor.Conn
	events   int
	pauses   [2]int // times each side (0 down, 1 up) was paused because its peer was congested
	maxOut   [2]int // largest Outbound seen on each side after a forward into it
	execErr  error  // ExecutorID of the upstream differs from the downstream's
	closes   chan closeEvent
}

// fwdSide is one connection's Context.
type fwdSide struct {
	pair *fwdPair
	dir  int // 0 downstream, 1 upstream
}

func (f *fwdSide) peer() reactor.Conn {
	if f.dir == 0 {
		return f.pair.up
	}
	return f.pair.down
}

// forwarder is the proxy's handler for both sides.
type forwarder struct {
	e       *env
	backend string
}

func (f *forwarder) handler() *funcs {
	return &funcs{
		data: func(c reactor.Conn, in reactor.View) {
			side := c.Context().(*fwdSide)
			peer := side.peer()
			side.pair.events++
			if peer == nil {
				f.e.errorf("forwarder: OnData on conn %d before its peer was linked, while paused", c.ID())
				return
			}
			if peer.Congested() {
				c.PauseRead(true)
				side.pair.pauses[side.dir]++
				return
			}
			if err := peer.Write(in.Peek(-1)); err != nil {
				c.Close(fmt.Errorf("forward: %w", err))
				return
			}
			in.Skip(in.Len())
			side.pair.maxOut[1-side.dir] = max(side.pair.maxOut[1-side.dir], peer.Outbound())
			if peer.Congested() {
				c.PauseRead(true)
				side.pair.pauses[side.dir]++
			}
		},
		writable: func(c reactor.Conn) {
			side := c.Context().(*fwdSide)
			side.pair.events++
			if p := side.peer(); p != nil {
				p.PauseRead(false)
			}
		},
		peerClose: func(c reactor.Conn) bool {
			side := c.Context().(*fwdSide)
			side.pair.events++
			if p := side.peer(); p != nil {
				if err := p.CloseWrite(); err != nil {
					return false
				}
			}
			return true
		},
		close: func(c reactor.Conn, err error) {
			side := c.Context().(*fwdSide)
			side.pair.events++
			side.pair.closes <- closeEvent{c: c, err: err, at: time.Now()}
			if p := side.peer(); p != nil {
				p.Close(err)
			}
		},
	}
}

func (f *forwarder) downstream(pairs chan *fwdPair) *funcs {
	h := f.handler()
	up := f.e.mon.wrap(f.handler())
	h.open = func(d reactor.Conn) {
		pair := &fwdPair{down: d, closes: make(chan closeEvent, 2)}
		d.SetContext(&fwdSide{pair: pair, dir: 0})
		d.PauseRead(true) // until the upstream is there
		pairs <- pair
		// The upstream's OnOpen runs before done, on the same executor.
		f.e.tr.Dial(d, f.backend, 0, &upOpen{Handler: up, pair: pair}, func(u reactor.Conn, err error) {
			pair.events++
			if err != nil {
				d.Close(fmt.Errorf("dial upstream: %w", err))
				return
			}
			if pair.up != u {
				f.e.errorf("Dial's done got conn %d, but OnOpen ran for %v", u.ID(), pair.up)
			}
			d.PauseRead(false)
		})
	}
	return h
}

// upOpen links the upstream into its pair in OnOpen.
type upOpen struct {
	reactor.Handler
	pair *fwdPair
}

func (u *upOpen) OnOpen(c reactor.Conn) {
	u.pair.events++
	if got, want := c.ExecutorID(), u.pair.down.ExecutorID(); got != want {
		u.pair.execErr = fmt.Errorf("the upstream dialed near conn %d has ExecutorID %d, the downstream %d",
			u.pair.down.ID(), got, want)
	}
	u.pair.up = c
	c.SetContext(&fwdSide{pair: u.pair, dir: 1})
	u.Handler.OnOpen(c)
}

// proxyCloses describes how the proxy's conns closed, if they did within a second, for the
// message of a failure seen by the client or the backend.
func proxyCloses(pair *fwdPair) string {
	var b strings.Builder
	deadline := time.After(time.Second)
	for range 2 {
		select {
		case ev := <-pair.closes:
			side := "downstream"
			if ev.c != pair.down {
				side = "upstream"
			}
			fmt.Fprintf(&b, "; proxy %s conn %d closed with %s", side, ev.c.ID(), describe(ev.err))
		case <-deadline:
			return b.String()
		}
	}
	return b.String()
}

func (s *suite) testForwardRun(t *testing.T, slow bool) {
	o := reactor.Options{}
	if slow {
		o = reactor.Options{HighWatermark: 256 << 10, LowWatermark: 64 << 10, MaxReadBuffer: 1 << 20}
	}
	e := s.start(t, o)
	upP, downP := newPattern(51), newPattern(52) // client->backend, backend->client

	// The backend: plain net, reads the client's stream and sends its own, concurrently.
	bl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.fatalf("backend listen: %v", err)
	}
	t.Cleanup(func() { bl.Close() })
	backendErr := make(chan error, 2)
	var upProg, downProg atomic.Int64 // bytes written by the client and by the backend
	go func() {
		c, err := bl.Accept()
		if err != nil {
			backendErr <- fmt.Errorf("backend accept: %w", err)
			backendErr <- nil
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(bulkTimeout))
		wrote := make(chan error, 1)
		go func() {
			err := writeStream(c, downP, forwardSize, 128<<10, &downProg)
			if err == nil {
				err = c.(*net.TCPConn).CloseWrite()
			}
			wrote <- err
		}()
		var p pace
		if slow { // read nothing until the client's writes are blocked, then 1 MiB per 25 ms
			p = slowPace(stalled(&upProg, forwardSize), stepTimeout, 1<<20, 25*time.Millisecond)
		}
		if got, err := readStream(c, upP, forwardSize, true, p); err != nil {
			backendErr <- fmt.Errorf("backend reading the client's stream through the proxy: %w (received %d)", err, got)
		} else {
			backendErr <- nil
		}
		backendErr <- <-wrote
	}()

	f := &forwarder{e: e, backend: bl.Addr().String()}
	pairs := make(chan *fwdPair, 1)
	addr, _ := e.listen(f.downstream(pairs))
	c := e.dial(addr)
	start := time.Now()
	clientErr := make(chan error, 1)
	go func() {
		err := writeStream(c, upP, forwardSize, 128<<10, &upProg)
		if err == nil {
			err = c.CloseWrite()
		}
		clientErr <- err
	}()
	var p pace
	if slow { // read nothing until the backend's writes are blocked, then 1 MiB per 25 ms
		p = slowPace(stalled(&downProg, forwardSize), stepTimeout, 1<<20, 25*time.Millisecond)
	}
	pair := recv(e, pairs, stepTimeout, "the proxy's downstream OnOpen")
	if got, err := readStream(c, downP, forwardSize, true, p); err != nil {
		e.fatalf("client reading the backend's stream through the proxy: %v (received %d)%s",
			err, got, proxyCloses(pair))
	}
	if err := recv(e, clientErr, bulkTimeout, "the client's writes"); err != nil {
		e.fatalf("client sending through the proxy: %v%s", err, proxyCloses(pair))
	}
	for range 2 {
		if err := recv(e, backendErr, bulkTimeout, "the backend"); err != nil {
			e.fatalf("%v%s", err, proxyCloses(pair))
		}
	}
	var evs []closeEvent
	for range 2 {
		evs = append(evs, recv(e, pair.closes, closeTimeout, "the proxy closing both conns after both half-closes"))
	}
	// All callbacks are over: the pair may be read here.
	t.Logf("[%s] forward 2 x 16 MiB (slow=%v) in %v: pauses down %d up %d, max outbound down %d up %d",
		e.name, slow, time.Since(start).Round(time.Millisecond), pair.pauses[0], pair.pauses[1],
		pair.maxOut[0], pair.maxOut[1])
	if pair.execErr != nil {
		e.fatalf("%v", pair.execErr)
	}
	for _, ev := range evs {
		if errors.Is(ev.err, reactor.ErrReadBufferOverflow) {
			e.fatalf("proxy conn %d closed with %v: a paused source kept buffering", ev.c.ID(), ev.err)
		}
		if !errIs(ev.err, nil, reactor.ErrPeerClosed) {
			e.fatalf("proxy conn %d OnClose reason %s, want nil or ErrPeerClosed", ev.c.ID(), describe(ev.err))
		}
	}
	if !slow {
		return
	}
	if pair.pauses[0] == 0 || pair.pauses[1] == 0 {
		e.fatalf("with slow final readers the proxy never paused a source (down %d, up %d times): "+
			"Congested() did not report the destination's queue", pair.pauses[0], pair.pauses[1])
	}
	for dir, m := range pair.maxOut {
		if limit := o.HighWatermark + o.MaxReadBuffer; m > limit {
			e.fatalf("side %d held %d outbound bytes, more than HighWatermark + MaxReadBuffer (%d)", dir, m, limit)
		}
	}
}
