package reactortest

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/strait-proxy/strait/reactor"
)

const bulkSize = 64 << 20

// 2. 64 MiB in each direction, byte-exact.
func (s *suite) testTransfer(t *testing.T) {
	t.Run("ClientToServer", func(t *testing.T) {
		e := s.start(t, reactor.Options{})
		p := newPattern(31)
		const statusLen = 48
		h := &funcs{
			open: func(c reactor.Conn) { c.SetContext(newVerifier(p)) },
			data: func(c reactor.Conn, in reactor.View) {
				v := c.Context().(*verifier)
				v.consume(in)
				if v.off < bulkSize {
					return
				}
				status := "OK"
				if v.bad >= 0 {
					status = fmt.Sprintf("BAD at byte %d", v.bad)
				} else if v.off > bulkSize {
					status = fmt.Sprintf("TOO MANY: %d bytes", v.off)
				}
				if err := c.Write([]byte(fmt.Sprintf("%-*s", statusLen, status))); err != nil {
					e.errorf("server Write of the status: %v", err)
				}
			},
		}
		addr, _ := e.listen(h)
		c := e.dial(addr)
		start := time.Now()
		if err := writeStream(c, p, bulkSize, 256<<10, nil); err != nil {
			e.fatalf("%v", err)
		}
		st := make([]byte, statusLen)
		if _, err := io.ReadFull(c, st); err != nil {
			e.fatalf("client read of the server's status after sending 64 MiB: %v", err)
		}
		if got := strings.TrimSpace(string(st)); got != "OK" {
			e.fatalf("server verified the 64 MiB it received: %s", got)
		}
		t.Logf("[%s] 64 MiB client->server in %v", e.name, time.Since(start).Round(time.Millisecond))
	})

	t.Run("ServerToClient", func(t *testing.T) {
		e := s.start(t, reactor.Options{})
		p := newPattern(32)
		closed := make(chan closeEvent, 1)
		h := &funcs{
			open: func(c reactor.Conn) {
				st := newStreamer(p, bulkSize, 64<<10, func(c reactor.Conn) {
					if err := c.CloseWrite(); err != nil {
						e.errorf("CloseWrite after the stream: %v", err)
					}
				})
				c.SetContext(st)
				st.pump(c)
			},
			writable: func(c reactor.Conn) { c.Context().(*streamer).pump(c) },
			close: func(c reactor.Conn, err error) {
				if st := c.Context().(*streamer); st.err != nil {
					e.errorf("%v", st.err)
				}
				closed <- closeEvent{c: c, err: err}
			},
		}
		addr, _ := e.listen(h)
		c := e.dial(addr)
		start := time.Now()
		if got, err := readStream(c, p, bulkSize, true, nil); err != nil {
			e.fatalf("server->client 64 MiB stream: %v (received %d)", err, got)
		}
		t.Logf("[%s] 64 MiB server->client in %v", e.name, time.Since(start).Round(time.Millisecond))
		c.Close()
		ev := recv(e, closed, closeTimeout, "OnClose after the client closed")
		if !errIs(ev.err, nil, reactor.ErrPeerClosed) {
			e.fatalf("OnClose reason %s, want nil or ErrPeerClosed", describe(ev.err))
		}
	})
}

// 3. A server streams 64 MiB to a slow client, respecting Congested and OnWritable: every
// byte arrives, writing really stopped on congestion and resumed on OnWritable, and the
// outbound queue never grew past the high watermark plus one write.
func (s *suite) testSlowReader(t *testing.T) {
	const chunk = 64 << 10
	o := reactor.Options{HighWatermark: 256 << 10, LowWatermark: 64 << 10}
	e := s.start(t, o)
	p := newPattern(41)
	type result struct {
		st       *streamer
		writable int
		err      error
	}
	type state struct {
		st       *streamer
		writable int
	}
	closed := make(chan result, 1)
	stream := newStreamer(p, bulkSize, chunk, func(c reactor.Conn) {
		if err := c.CloseWrite(); err != nil {
			e.errorf("CloseWrite after the stream: %v", err)
		}
	})
	h := &funcs{
		open: func(c reactor.Conn) {
			st := &state{st: stream}
			c.SetContext(st)
			st.st.pump(c)
		},
		writable: func(c reactor.Conn) {
			st := c.Context().(*state)
			st.writable++
			if c.Congested() {
				e.errorf("OnWritable ran while Congested() still reports true (Outbound %d)", c.Outbound())
			}
			st.st.pump(c)
		},
		close: func(c reactor.Conn, err error) {
			st := c.Context().(*state)
			closed <- result{st: st.st, writable: st.writable, err: err}
		},
	}
	addr, _ := e.listen(h)
	c := e.dial(addr)
	start := time.Now()
	// The client reads nothing until the server met congestion, then 2 MiB per 20 ms pause.
	congested := func() bool { return stream.stops.Load() > 0 }
	got, err := readStream(c, p, bulkSize, true, slowPace(congested, stepTimeout, 2<<20, 20*time.Millisecond))
	if err != nil {
		e.fatalf("slow client reading the 64 MiB stream: %v (received %d)", err, got)
	}
	c.Close()
	r := recv(e, closed, closeTimeout, "OnClose after the slow client finished")
	t.Logf("[%s] slow reader: %v, writer stopped %d times on congestion, %d OnWritable, max Outbound %d",
		e.name, time.Since(start).Round(time.Millisecond), r.st.stops.Load(), r.writable, r.st.maxOutbound)
	if r.st.err != nil {
		e.fatalf("%v", r.st.err)
	}
	if !errIs(r.err, nil, reactor.ErrPeerClosed) {
		e.fatalf("OnClose reason %s, want nil or ErrPeerClosed", describe(r.err))
	}
	if r.st.stops.Load() == 0 || r.writable == 0 {
		e.fatalf("a slow reader never made the writer congested (stops %d, OnWritable %d): "+
			"Congested() does not report the queue", r.st.stops.Load(), r.writable)
	}
	if limit := o.HighWatermark + chunk; r.st.maxOutbound > limit {
		e.fatalf("Outbound reached %d, more than HighWatermark (%d) + one write (%d)",
			r.st.maxOutbound, o.HighWatermark, chunk)
	}
}
