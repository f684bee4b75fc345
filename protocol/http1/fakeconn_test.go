package http1

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/reactor"
)

// fakeConn is an in-memory reactor.Conn: it records what is written, pauses, closes and the
// functions queued with Exec (run by the test with runExec).
type fakeConn struct {
	out        bytes.Buffer
	writes     int // Write and Writev calls
	paused     bool
	closed     bool
	aborted    bool
	closeErr   error
	writeShut  bool
	execs      []func()
	failWrites bool
}

var _ reactor.Conn = (*fakeConn)(nil)

func (c *fakeConn) ID() uint64           { return 1 }
func (c *fakeConn) ExecutorID() int      { return 0 }
func (c *fakeConn) LocalAddr() net.Addr  { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80} }
func (c *fakeConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000} }

func (c *fakeConn) Write(p []byte) error {
	if c.closed || c.writeShut || c.failWrites {
		return reactor.ErrClosed
	}
	c.writes++
	c.out.Write(p)
	return nil
}

func (c *fakeConn) Writev(bufs [][]byte) error {
	if c.closed || c.writeShut || c.failWrites {
		return reactor.ErrClosed
	}
	c.writes++
	for _, b := range bufs {
		c.out.Write(b)
	}
	return nil
}

func (c *fakeConn) Outbound() int                { return 0 }
func (c *fakeConn) Congested() bool              { return false }
func (c *fakeConn) PauseRead(p bool)             { c.paused = p }
func (c *fakeConn) CloseWrite() error            { c.writeShut = true; return nil }
func (c *fakeConn) SetIdleTimeout(time.Duration) {}
func (c *fakeConn) SetReadTimeout(time.Duration) {}
func (c *fakeConn) Context() any                 { return nil }

// The codecs arm no timers; these two satisfy the contract's executor timers.
func (c *fakeConn) Schedule(*reactor.Timer, time.Duration, func()) {}
func (c *fakeConn) Unschedule(*reactor.Timer) bool                 { return false }
func (c *fakeConn) SetContext(any)                                 {}

func (c *fakeConn) Send(b *reactor.Buffer) error {
	defer b.Release()
	if c.closed {
		return reactor.ErrClosed
	}
	for _, p := range b.Bytes() {
		c.out.Write(p)
	}
	c.writes++
	return nil
}

func (c *fakeConn) Exec(fn func()) bool {
	if c.closed {
		return false
	}
	c.execs = append(c.execs, fn)
	return true
}

func (c *fakeConn) Close(err error) {
	if !c.closed {
		c.closed, c.closeErr = true, err
	}
}

func (c *fakeConn) Abort(err error) {
	if !c.closed {
		c.closed, c.aborted, c.closeErr = true, true, err
	}
}

// runExec runs the queued Exec functions (what the executor does after a callback).
func (c *fakeConn) runExec() {
	for len(c.execs) > 0 {
		fn := c.execs[0]
		c.execs = c.execs[1:]
		fn()
	}
}

// take returns and clears what was written.
func (c *fakeConn) take() string {
	s := c.out.String()
	c.out.Reset()
	return s
}

// fakeView is a reactor.View over a byte slice. With copyPeek it returns a fresh copy from
// every Peek, as backends do when bytes span segments, so a codec that kept a Peek result
// past a Skip, or relied on aliasing, is caught.
type fakeView struct {
	buf      []byte
	off      int
	copyPeek bool
}

var _ reactor.View = (*fakeView)(nil)

func (v *fakeView) Len() int { return len(v.buf) - v.off }

func (v *fakeView) Peek(n int) []byte {
	if n <= 0 || n > v.Len() {
		n = v.Len()
	}
	p := v.buf[v.off : v.off+n : v.off+n]
	if v.copyPeek {
		return append([]byte(nil), p...)
	}
	return p
}

func (v *fakeView) Skip(n int) { v.off += min(max(n, 0), v.Len()) }

func (v *fakeView) Detach(n int) *reactor.Buffer {
	n = min(max(n, 0), v.Len())
	b := reactor.NewBuffer()
	b.AppendCopy(v.buf[v.off : v.off+n])
	v.off += n
	return b
}

// decoder is either codec's Decode.
type decoder interface {
	Decode(in reactor.View) error
}

// pipe feeds a codec the way a transport does: bytes accumulate, unconsumed bytes are
// delivered again with newer ones (moved to a fresh buffer, as gnet moves them), and nothing
// is delivered while reading is paused.
type pipe struct {
	t        testing.TB
	conn     *fakeConn
	codec    decoder
	pending  []byte
	copyPeek bool
	err      error // the first Decode error
	decodes  int
}

// feed delivers b (appended to the unconsumed bytes) and returns Decode's error, if any.
func (p *pipe) feed(b []byte) error {
	p.pending = append(p.pending, b...)
	return p.pump()
}

// pump delivers the unconsumed bytes while the codec makes progress and reading is not
// paused (resuming re-delivers, as PauseRead(false) does).
func (p *pipe) pump() error {
	for len(p.pending) > 0 && !p.conn.paused && !p.conn.closed && p.err == nil {
		v := &fakeView{buf: p.pending, copyPeek: p.copyPeek}
		p.decodes++
		err := p.codec.Decode(v)
		if v.off > len(p.pending) {
			p.t.Fatalf("view consumed past its end")
		}
		if v.off > 0 {
			p.pending = append([]byte(nil), p.pending[v.off:]...)
		}
		if err != nil {
			p.err = err
			return err
		}
		if v.off == 0 {
			break
		}
	}
	return nil
}

// recSink records what a codec reports. Body bytes are copied out of the view (the way the
// stream manager writes them on) and consumed exactly.
type recSink struct {
	events   []string
	heads    map[protocol.StreamID]protocol.Headers
	bodies   map[protocol.StreamID]*bytes.Buffer
	ended    map[protocol.StreamID]bool
	trailers map[protocol.StreamID]string
	resets   map[protocol.StreamID]error
	// onHeaders, when set, runs after a head is recorded (to answer synchronously).
	onHeaders func(id protocol.StreamID, h protocol.Headers, end bool)
	// onEnd runs when a stream's direction ended (data end or trailers).
	onEnd func(id protocol.StreamID)
	// detach makes OnData take bytes with Detach instead of Peek+Skip.
	detach bool
}

func newRecSink() *recSink {
	return &recSink{
		heads:    map[protocol.StreamID]protocol.Headers{},
		bodies:   map[protocol.StreamID]*bytes.Buffer{},
		ended:    map[protocol.StreamID]bool{},
		trailers: map[protocol.StreamID]string{},
		resets:   map[protocol.StreamID]error{},
	}
}

func (r *recSink) OnHeaders(id protocol.StreamID, h protocol.Headers, end bool) {
	r.events = append(r.events, fmt.Sprintf("H%d %s end=%v", id, renderHead(h), end))
	r.heads[id] = h
	r.bodies[id] = new(bytes.Buffer)
	if end {
		r.ended[id] = true
	}
	if r.onHeaders != nil {
		r.onHeaders(id, h, end)
	}
	if end && r.onEnd != nil {
		r.onEnd(id)
	}
}

func (r *recSink) OnData(id protocol.StreamID, in reactor.View, n int, end bool) {
	if n < 0 || n > in.Len() {
		panic(fmt.Sprintf("OnData n=%d with %d bytes in view", n, in.Len()))
	}
	b := r.bodies[id]
	if b == nil {
		b = new(bytes.Buffer)
		r.bodies[id] = b
	}
	if n > 0 {
		if r.detach {
			buf := in.Detach(n)
			for _, p := range buf.Bytes() {
				b.Write(p)
			}
			buf.Release()
		} else {
			b.Write(in.Peek(n))
			in.Skip(n)
		}
	}
	if r.ended[id] {
		r.events = append(r.events, fmt.Sprintf("D%d after end", id))
	}
	if end {
		r.ended[id] = true
		r.events = append(r.events, fmt.Sprintf("E%d", id))
		if r.onEnd != nil {
			r.onEnd(id)
		}
	}
}

func (r *recSink) OnTrailers(id protocol.StreamID, t protocol.Headers) {
	r.trailers[id] = renderHead(t)
	t.Release()
	r.ended[id] = true
	r.events = append(r.events, fmt.Sprintf("T%d %s", id, r.trailers[id]))
	if r.onEnd != nil {
		r.onEnd(id)
	}
}

func (r *recSink) OnReset(id protocol.StreamID, err error) {
	r.resets[id] = err
	r.events = append(r.events, fmt.Sprintf("R%d", id))
}

// headCount is the number of OnHeaders calls.
func (r *recSink) headCount() int {
	n := 0
	for _, e := range r.events {
		if strings.HasPrefix(e, "H") {
			n++
		}
	}
	return n
}

func (r *recSink) body(id protocol.StreamID) string {
	if b := r.bodies[id]; b != nil {
		return b.String()
	}
	return ""
}

func (r *recSink) release() {
	for id, h := range r.heads {
		h.Release()
		delete(r.heads, id)
	}
}

// renderHead renders headers as "name=value" pairs in Range order.
func renderHead(h protocol.Headers) string {
	var b strings.Builder
	h.Range(func(n, v string) bool {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(n + "=" + v)
		return true
	})
	return b.String()
}

// newServerPipe returns a server codec over a fake connection, fed through a pipe.
func newServerPipe(t testing.TB, lim Limits) (*serverCodec, *pipe, *recSink) {
	t.Helper()
	sink := newRecSink()
	conn := &fakeConn{}
	codec := NewCodec(lim)
	s := codec.NewServer(conn, sink).(*serverCodec)
	return s, &pipe{t: t, conn: conn, codec: s}, sink
}

// newClientPipe returns a client codec over a fake connection, fed through a pipe.
func newClientPipe(t testing.TB, lim Limits) (*clientCodec, *pipe) {
	t.Helper()
	conn := &fakeConn{}
	c := NewCodec(lim).NewClient(conn).(*clientCodec)
	return c, &pipe{t: t, conn: conn, codec: c}
}

// respond answers stream id of s with a complete response (status and body, Content-Length
// from the local reply like the stream manager's sendLocal).
func respond(t testing.TB, s protocol.ServerCodec, id protocol.StreamID, status, body string) {
	t.Helper()
	h := protocol.NewHeaderList(protocol.Status, status, "content-length", fmt.Sprint(len(body)))
	if err := s.EncodeHeaders(id, h, body == ""); err != nil {
		t.Fatalf("EncodeHeaders(%d): %v", id, err)
	}
	if body != "" {
		if err := s.EncodeData(id, [][]byte{[]byte(body)}, true); err != nil {
			t.Fatalf("EncodeData(%d): %v", id, err)
		}
	}
}
