package http2

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/reactor"
)

// fakeConn is an in-memory reactor.Conn: it records what is written, closes and the
// functions queued with Exec (run by the test with runExec). outbound, when set, is what
// Outbound reports (a peer that does not read).
type fakeConn struct {
	out    bytes.Buffer
	writes int
	closed bool
	// writeClosed: CloseWrite was called (FIN sent, reading goes on).
	writeClosed bool
	aborted     bool
	closeErr    error
	execs       []func()
	outbound    int
	paused      bool
	timers      []fakeTimer
}

var _ reactor.Conn = (*fakeConn)(nil)

func (c *fakeConn) ID() uint64           { return 1 }
func (c *fakeConn) ExecutorID() int      { return 0 }
func (c *fakeConn) LocalAddr() net.Addr  { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80} }
func (c *fakeConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000} }

func (c *fakeConn) Write(p []byte) error {
	if c.closed {
		return reactor.ErrClosed
	}
	c.writes++
	c.out.Write(p)
	return nil
}

func (c *fakeConn) Writev(bufs [][]byte) error {
	if c.closed {
		return reactor.ErrClosed
	}
	c.writes++
	for _, b := range bufs {
		c.out.Write(b)
	}
	return nil
}

// Schedule records the timer; runTimers fires what is due (the codec arms none today).
func (c *fakeConn) Schedule(t *reactor.Timer, d time.Duration, fn func()) {
	c.timers = append(c.timers, fakeTimer{t, fn})
}

func (c *fakeConn) Unschedule(t *reactor.Timer) bool {
	for i, ft := range c.timers {
		if ft.t == t {
			c.timers = append(c.timers[:i], c.timers[i+1:]...)
			return true
		}
	}
	return false
}

type fakeTimer struct {
	t  *reactor.Timer
	fn func()
}

func (c *fakeConn) Outbound() int                { return c.outbound }
func (c *fakeConn) Congested() bool              { return false }
func (c *fakeConn) PauseRead(p bool)             { c.paused = p }
func (c *fakeConn) CloseWrite() error            { c.writeClosed = true; return nil }
func (c *fakeConn) SetIdleTimeout(time.Duration) {}
func (c *fakeConn) SetReadTimeout(time.Duration) {}
func (c *fakeConn) Context() any                 { return nil }
func (c *fakeConn) SetContext(any)               {}

func (c *fakeConn) Send(b *reactor.Buffer) error {
	defer b.Release()
	if c.closed {
		return reactor.ErrClosed
	}
	for _, p := range b.Bytes() {
		c.out.Write(p)
	}
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

func (c *fakeConn) runExec() {
	for len(c.execs) > 0 {
		fn := c.execs[0]
		c.execs = c.execs[1:]
		fn()
	}
}

// fakeView is a reactor.View over a byte slice. With copyPeek every Peek returns a fresh
// copy, as backends do when bytes span segments.
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

// pipe feeds a codec the way a transport does: unconsumed bytes are delivered again with
// newer ones (moved to a fresh buffer).
type pipe struct {
	t        testing.TB
	conn     *fakeConn
	codec    decoder
	pending  []byte
	copyPeek bool
	err      error
}

func (p *pipe) feed(b []byte) error {
	p.pending = append(p.pending, b...)
	for len(p.pending) > 0 && p.err == nil && !p.conn.closed {
		v := &fakeView{buf: p.pending, copyPeek: p.copyPeek}
		err := p.codec.Decode(v)
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
	return p.err
}

// recSink records what a codec reports. Body bytes are copied out of the view and consumed
// exactly.
type recSink struct {
	events   []string
	heads    map[protocol.StreamID]protocol.Headers
	bodies   map[protocol.StreamID]*bytes.Buffer
	ended    map[protocol.StreamID]bool
	trailers map[protocol.StreamID]string
	resets   map[protocol.StreamID]error
	// onHeaders, onEnd and onData run after the event is recorded (to answer).
	onHeaders func(id protocol.StreamID, h protocol.Headers, end bool)
	onEnd     func(id protocol.StreamID)
	onData    func(id protocol.StreamID, n int)
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
	if old := r.heads[id]; old != nil {
		old.Release()
	}
	r.heads[id] = h
	if r.bodies[id] == nil {
		r.bodies[id] = new(bytes.Buffer)
	}
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
		b.Write(in.Peek(n))
		in.Skip(n)
	}
	if r.ended[id] {
		r.events = append(r.events, fmt.Sprintf("D%d after end", id))
	}
	if r.onData != nil {
		r.onData(id, n)
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

func (r *recSink) headCount() int {
	n := 0
	for _, e := range r.events {
		if strings.HasPrefix(e, "H") {
			n++
		}
	}
	return n
}

// flowSink is a recSink that takes part in flow control: it consumes only when told to.
type flowSink struct {
	*recSink
	writable []protocol.StreamID
	onWrite  func(id protocol.StreamID)
}

func (f *flowSink) OnStreamWritable(id protocol.StreamID) {
	f.writable = append(f.writable, id)
	if f.onWrite != nil {
		f.onWrite(id)
	}
}

var _ FlowSink = (*flowSink)(nil)

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

// --- the peer: x/net's Framer and hpack on the other end -------------------------------------

// peer writes frames with x/net's Framer (the other end of the codec under test) and reads
// what the codec wrote.
type peer struct {
	t    testing.TB
	wbuf bytes.Buffer
	fr   *http2.Framer
	enc  *hpack.Encoder
	hbuf bytes.Buffer

	rbuf   bytes.Buffer
	rfr    *http2.Framer
	bodies map[uint32]*bytes.Buffer
	heads  map[uint32][]hpack.HeaderField
}

func newPeer(t testing.TB) *peer {
	p := &peer{t: t, bodies: map[uint32]*bytes.Buffer{}, heads: map[uint32][]hpack.HeaderField{}}
	p.fr = http2.NewFramer(&p.wbuf, nil)
	p.fr.AllowIllegalWrites = true
	p.enc = hpack.NewEncoder(&p.hbuf)
	p.rfr = http2.NewFramer(nil, &p.rbuf)
	p.rfr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	p.rfr.SetMaxReadFrameSize(maxFrameSize)
	return p
}

// take returns and clears the frames written so far.
func (p *peer) take() []byte {
	b := append([]byte(nil), p.wbuf.Bytes()...)
	p.wbuf.Reset()
	return b
}

// block HPACK-encodes name, value pairs.
func (p *peer) block(pairs ...string) []byte {
	p.hbuf.Reset()
	for i := 0; i+1 < len(pairs); i += 2 {
		if err := p.enc.WriteField(hpack.HeaderField{Name: pairs[i], Value: pairs[i+1]}); err != nil {
			p.t.Fatal(err)
		}
	}
	return append([]byte(nil), p.hbuf.Bytes()...)
}

func (p *peer) headers(id uint32, end bool, pairs ...string) {
	if err := p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: p.block(pairs...), EndStream: end, EndHeaders: true}); err != nil {
		p.t.Fatal(err)
	}
}

func (p *peer) data(id uint32, end bool, b []byte) {
	if err := p.fr.WriteData(id, end, b); err != nil {
		p.t.Fatal(err)
	}
}

// get is a GET request's pseudo-headers.
func get(path string) []string {
	return []string{":method", "GET", ":scheme", "http", ":authority", "example.com", ":path", path}
}

func post(path string, extra ...string) []string {
	return append([]string{":method", "POST", ":scheme", "http", ":authority", "example.com", ":path", path}, extra...)
}

// read parses frames the codec wrote (b appended to what is unread) and renders them.
func (p *peer) read(b []byte) []string {
	p.rbuf.Write(b)
	var out []string
	for p.rbuf.Len() > 0 {
		f, err := p.rfr.ReadFrame()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			p.t.Fatalf("the codec wrote an invalid frame: %v", err)
		}
		out = append(out, p.render(f))
	}
	return out
}

func (p *peer) render(f http2.Frame) string {
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		p.heads[f.StreamID] = f.Fields
		var b strings.Builder
		fmt.Fprintf(&b, "HEADERS %d", f.StreamID)
		if f.StreamEnded() {
			b.WriteString(" end")
		}
		for _, hf := range f.Fields {
			b.WriteString(" " + hf.Name + "=" + hf.Value)
		}
		return b.String()
	case *http2.DataFrame:
		bb := p.bodies[f.StreamID]
		if bb == nil {
			bb = new(bytes.Buffer)
			p.bodies[f.StreamID] = bb
		}
		bb.Write(f.Data())
		s := fmt.Sprintf("DATA %d %d", f.StreamID, len(f.Data()))
		if f.StreamEnded() {
			s += " end"
		}
		return s
	case *http2.SettingsFrame:
		if f.IsAck() {
			return "SETTINGS ack"
		}
		var l []string
		_ = f.ForeachSetting(func(s http2.Setting) error {
			l = append(l, fmt.Sprintf("%v=%d", s.ID, s.Val))
			return nil
		})
		sort.Strings(l)
		return "SETTINGS " + strings.Join(l, ",")
	case *http2.WindowUpdateFrame:
		return fmt.Sprintf("WINDOW_UPDATE %d %d", f.StreamID, f.Increment)
	case *http2.RSTStreamFrame:
		return fmt.Sprintf("RST_STREAM %d %v", f.StreamID, f.ErrCode)
	case *http2.GoAwayFrame:
		return fmt.Sprintf("GOAWAY %d %v", f.LastStreamID, f.ErrCode)
	case *http2.PingFrame:
		if f.IsAck() {
			return fmt.Sprintf("PING ack %x", f.Data)
		}
		return fmt.Sprintf("PING %x", f.Data)
	}
	return fmt.Sprintf("%T", f)
}

// has reports whether frames contains one starting with prefix.
func has(frames []string, prefix string) bool {
	for _, f := range frames {
		if strings.HasPrefix(f, prefix) {
			return true
		}
	}
	return false
}

// --- server harness -------------------------------------------------------------------------

type serverHarness struct {
	t    *testing.T
	conn *fakeConn
	s    *serverCodec
	sink protocol.Sink
	rec  *recSink
	p    *peer
	pipe *pipe
}

// newServerHarness returns a server codec over a fake connection with the client preface
// and SETTINGS exchanged.
func newServerHarness(t *testing.T, cfg Config, sink protocol.Sink, settings ...http2.Setting) *serverHarness {
	t.Helper()
	rec, _ := sink.(*recSink)
	if fs, ok := sink.(*flowSink); ok {
		rec = fs.recSink
	}
	conn := &fakeConn{}
	codec := NewCodec(cfg)
	s := codec.NewServer(conn, sink).(*serverCodec)
	h := &serverHarness{t: t, conn: conn, s: s, sink: sink, rec: rec, p: newPeer(t)}
	h.pipe = &pipe{t: t, conn: conn, codec: s}
	first := h.frames()
	if len(first) < 1 || !strings.HasPrefix(first[0], "SETTINGS ") ||
		len(first) != 1+btoi(cfg.InitialConnWindow != initialWindow) {
		t.Fatalf("server preface: %q", first)
	}
	h.p.wbuf.WriteString(preface)
	if err := h.p.fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	if err := h.feed(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if got := h.frames(); len(got) != 1 || got[0] != "SETTINGS ack" {
		t.Fatalf("after the client SETTINGS: %q", got)
	}
	// The client acknowledges the server's SETTINGS.
	if err := h.p.fr.WriteSettingsAck(); err != nil {
		t.Fatal(err)
	}
	if err := h.feed(); err != nil {
		t.Fatal(err)
	}
	return h
}

// feed delivers what the peer wrote.
func (h *serverHarness) feed() error { return h.pipe.feed(h.p.take()) }

// mustFeed delivers what the peer wrote and fails on a Decode error.
func (h *serverHarness) mustFeed() {
	h.t.Helper()
	if err := h.feed(); err != nil {
		h.t.Fatalf("Decode: %v", err)
	}
}

// frames returns the frames the codec wrote since the last call.
func (h *serverHarness) frames() []string {
	b := h.conn.out.Bytes()
	out := h.p.read(b)
	h.conn.out.Reset()
	return out
}

// respond answers stream id with status and body.
func respond(t testing.TB, s protocol.Encoder, id protocol.StreamID, status, body string, extra ...string) {
	t.Helper()
	h := protocol.NewHeaderList(append([]string{protocol.Status, status, "content-length", fmt.Sprint(len(body))}, extra...)...)
	if err := s.EncodeHeaders(id, h, body == ""); err != nil {
		t.Fatalf("EncodeHeaders(%d): %v", id, err)
	}
	if body != "" {
		if err := s.EncodeData(id, [][]byte{[]byte(body)}, true); err != nil {
			t.Fatalf("EncodeData(%d): %v", id, err)
		}
	}
}

// connCode returns the GOAWAY code of a connection error (fails if err is not one).
func connCode(t testing.TB, err error) http2.ErrCode {
	t.Helper()
	var ce *ConnError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *ConnError", err, err)
	}
	if !errors.Is(err, protocol.ErrConnection) {
		t.Fatalf("error %v does not wrap protocol.ErrConnection", err)
	}
	return ce.Code
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// --- client harness -------------------------------------------------------------------------

type clientHarness struct {
	t    *testing.T
	conn *fakeConn
	c    *clientCodec
	p    *peer
	pipe *pipe
}

// newClientHarness returns a client codec whose peer (a server) sent settings and
// acknowledged the client's.
func newClientHarness(t *testing.T, cfg Config, settings ...http2.Setting) *clientHarness {
	t.Helper()
	conn := &fakeConn{}
	c := NewCodec(cfg).NewClient(conn).(*clientCodec)
	h := &clientHarness{t: t, conn: conn, c: c, p: newPeer(t)}
	h.pipe = &pipe{t: t, conn: conn, codec: c}
	out := conn.out.Bytes()
	if !bytes.HasPrefix(out, []byte(preface)) {
		t.Fatalf("client did not start with the preface: %q", out)
	}
	conn.out.Next(len(preface))
	first := h.frames()
	if len(first) != 2 || !strings.HasPrefix(first[0], "SETTINGS ") || !strings.HasPrefix(first[1], "WINDOW_UPDATE 0 ") {
		t.Fatalf("client preface: %q", first)
	}
	if err := h.p.fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	if err := h.p.fr.WriteSettingsAck(); err != nil {
		t.Fatal(err)
	}
	if err := h.feed(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if got := h.frames(); len(got) != 1 || got[0] != "SETTINGS ack" {
		t.Fatalf("after the server SETTINGS: %q", got)
	}
	return h
}

func (h *clientHarness) feed() error { return h.pipe.feed(h.p.take()) }

func (h *clientHarness) mustFeed() {
	h.t.Helper()
	if err := h.feed(); err != nil {
		h.t.Fatalf("Decode: %v", err)
	}
}

func (h *clientHarness) frames() []string {
	out := h.p.read(h.conn.out.Bytes())
	h.conn.out.Reset()
	return out
}

func http2HeadersParam(id uint32, block []byte) http2.HeadersFrameParam {
	return http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true}
}
