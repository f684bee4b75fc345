package bolt

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/reactor"
)

// fakeConn is an in-memory reactor.Conn: it records what the codec writes (each Write or
// Writev call is one entry of ops, so tests can count syscalls) and queues Exec functions
// until the test runs them.
type fakeConn struct {
	wire     bytes.Buffer
	ops      int
	execs    []func()
	closed   bool
	reason   error
	failWith error // Write and Writev fail with it when set
	discard  bool  // count bytes only (benchmarks)
	written  int
}

var _ reactor.Conn = (*fakeConn)(nil)

func (c *fakeConn) ID() uint64           { return 1 }
func (c *fakeConn) ExecutorID() int      { return 0 }
func (c *fakeConn) LocalAddr() net.Addr  { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (c *fakeConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2} }

func (c *fakeConn) Write(p []byte) error { return c.Writev([][]byte{p}) }

func (c *fakeConn) Writev(bufs [][]byte) error {
	if c.failWith != nil {
		return c.failWith
	}
	if c.closed {
		return reactor.ErrClosed
	}
	c.ops++
	for _, b := range bufs {
		c.written += len(b)
		if !c.discard {
			c.wire.Write(b)
		}
	}
	return nil
}

func (c *fakeConn) Outbound() int                { return 0 }
func (c *fakeConn) Congested() bool              { return false }
func (c *fakeConn) PauseRead(bool)               {}
func (c *fakeConn) CloseWrite() error            { return nil }
func (c *fakeConn) SetIdleTimeout(time.Duration) {}
func (c *fakeConn) SetReadTimeout(time.Duration) {}
func (c *fakeConn) Context() any                 { return nil }
func (c *fakeConn) SetContext(any)               {}

func (c *fakeConn) Send(b *reactor.Buffer) error {
	defer b.Release()
	return c.Writev(b.Bytes())
}

func (c *fakeConn) Exec(fn func()) bool {
	if c.closed {
		return false
	}
	c.execs = append(c.execs, fn)
	return true
}

// runExecs runs queued Exec functions (and those they queue) in order.
func (c *fakeConn) runExecs() {
	for len(c.execs) > 0 {
		fn := c.execs[0]
		c.execs = c.execs[1:]
		fn()
	}
}

func (c *fakeConn) Close(reason error) {
	if !c.closed {
		c.closed, c.reason = true, reason
	}
}

func (c *fakeConn) Abort(reason error) { c.Close(reason) }

// fakeView is a View over a byte slice; Skip and Detach consume from the front.
type fakeView struct{ b []byte }

var _ reactor.View = (*fakeView)(nil)

func (v *fakeView) Len() int { return len(v.b) }

func (v *fakeView) Peek(n int) []byte {
	if n <= 0 || n > len(v.b) {
		n = len(v.b)
	}
	return v.b[:n:n]
}

func (v *fakeView) Skip(n int) { v.b = v.b[min(n, len(v.b)):] }

func (v *fakeView) Detach(n int) *reactor.Buffer {
	n = min(n, len(v.b))
	b := reactor.NewBuffer()
	b.AppendCopy(v.b[:n])
	v.b = v.b[n:]
	return b
}

// feeder plays the transport for a codec: bytes arrive in chunks, what Decode leaves
// unconsumed is offered again with the next chunk.
type feeder struct {
	pending []byte
	decode  func(reactor.View) error
}

func (f *feeder) feed(chunk []byte) error {
	f.pending = append(f.pending, chunk...)
	v := &fakeView{b: f.pending}
	err := f.decode(v)
	f.pending = append(f.pending[:0:0], v.b...)
	return err
}

// event is one sink callback, with copies of everything it carried.
type event struct {
	kind   string // headers, data, trailers, reset
	id     uint64
	fields []protocol.Field
	data   []byte
	end    bool
	err    error
}

func (e event) String() string {
	switch e.kind {
	case "headers":
		return fmt.Sprintf("headers(%d,%v,end=%v)", e.id, e.fields, e.end)
	case "data":
		return fmt.Sprintf("data(%d,%q,end=%v)", e.id, e.data, e.end)
	}
	return fmt.Sprintf("%s(%d,%v)", e.kind, e.id, e.err)
}

// recSink records callbacks. Headers are kept (for re-encoding) until the test releases them.
type recSink struct {
	events    []event
	heads     map[uint64]protocol.Headers
	onHeaders func(id uint64, h protocol.Headers, end bool)
	onData    func(id uint64, end bool)
	keepHeads bool
}

func fieldsOf(h protocol.Headers) []protocol.Field {
	var out []protocol.Field
	h.Range(func(n, v string) bool {
		out = append(out, protocol.Field{Name: strings.Clone(n), Value: strings.Clone(v)})
		return true
	})
	return out
}

func (s *recSink) OnHeaders(id protocol.StreamID, h protocol.Headers, end bool) {
	s.events = append(s.events, event{kind: "headers", id: id, fields: fieldsOf(h), end: end})
	if s.keepHeads {
		if s.heads == nil {
			s.heads = map[uint64]protocol.Headers{}
		}
		s.heads[id] = h
	}
	if s.onHeaders != nil {
		s.onHeaders(id, h, end)
	}
	if !s.keepHeads {
		h.Release()
	}
}

func (s *recSink) OnData(id protocol.StreamID, in reactor.View, n int, end bool) {
	if n > in.Len() {
		panic(fmt.Sprintf("OnData offered %d bytes with %d in the view", n, in.Len()))
	}
	s.events = append(s.events, event{kind: "data", id: id, data: bytes.Clone(in.Peek(n)), end: end})
	in.Skip(n)
	if s.onData != nil {
		s.onData(id, end)
	}
}

func (s *recSink) OnTrailers(id protocol.StreamID, t protocol.Headers) {
	s.events = append(s.events, event{kind: "trailers", id: id, fields: fieldsOf(t)})
	t.Release()
}

func (s *recSink) OnReset(id protocol.StreamID, err error) {
	s.events = append(s.events, event{kind: "reset", id: id, err: err})
}

// merged returns the events with consecutive data events of one stream joined (how content
// is split depends on how bytes arrived, not on what they mean) and data events of zero
// bytes that do not end a stream dropped.
func merged(evs []event) []string {
	var out []event
	for _, e := range evs {
		if e.kind == "data" && len(out) > 0 {
			last := &out[len(out)-1]
			if last.kind == "data" && last.id == e.id && !last.end {
				last.data = append(last.data, e.data...)
				last.end = e.end
				continue
			}
		}
		if e.kind == "data" {
			e.data = bytes.Clone(e.data)
		}
		out = append(out, e)
	}
	s := make([]string, len(out))
	for i, e := range out {
		s[i] = e.String()
	}
	return s
}

// msg is a decoded frame with owned fields, for assertions on what went on the wire.
type msg struct {
	kind    Kind
	id      uint32
	codec   byte
	version byte
	timeout int32
	status  Status
	class   string
	header  []string // "k=v" in wire order
	content string
}

func msgOf(f *Frame) msg {
	m := msg{kind: f.Kind(), id: f.RequestID, codec: f.Codec, version: f.Version, timeout: f.Timeout,
		status: f.Status, class: string(f.Class), content: string(f.Content)}
	f.Header.Range(func(k, v []byte) bool {
		m.header = append(m.header, string(k)+"="+string(v))
		return true
	})
	return m
}

// frames decodes b as a sequence of complete frames; anything else fails the test.
func frames(t testing.TB, b []byte) []msg {
	t.Helper()
	var out []msg
	for len(b) > 0 {
		var f Frame
		n, err := Decode(b, &f, Limits{})
		if err != nil {
			t.Fatalf("wire is not a sequence of frames: %v after %d frames (%d bytes left: %x)", err, len(out), len(b), b[:min(len(b), 64)])
		}
		out = append(out, msgOf(&f))
		b = b[n:]
	}
	return out
}

// parseFrames is frames without a test: nil, error when b is not a sequence of frames.
func parseFrames(b []byte) ([]msg, error) {
	var out []msg
	for len(b) > 0 {
		var f Frame
		n, err := Decode(b, &f, Limits{})
		if err != nil {
			return out, err
		}
		out = append(out, msgOf(&f))
		b = b[n:]
	}
	return out, nil
}

func ids(ms []msg) []uint32 {
	out := make([]uint32, len(ms))
	for i, m := range ms {
		out[i] = m.id
	}
	return out
}

// frameSpec builds test frames.
type frameSpec struct {
	typ     byte
	cmd     uint16
	id      uint32
	codec   byte
	timeout int32
	status  Status
	class   string
	kv      []string
	content []byte
}

func (s frameSpec) bytes(t testing.TB) []byte {
	t.Helper()
	var hb []byte
	for i := 0; i+1 < len(s.kv); i += 2 {
		hb = AppendHeader(hb, s.kv[i], s.kv[i+1])
	}
	h, err := ParseHeader(hb)
	if err != nil {
		t.Fatal(err)
	}
	codec := s.codec
	if codec == 0 {
		codec = CodecHessian2
	}
	f := Frame{Type: s.typ, CmdCode: s.cmd, Version: CommandVersion, RequestID: s.id, Codec: codec,
		Timeout: s.timeout, Status: s.status, Class: []byte(s.class), Header: h, Content: s.content}
	b, err := AppendFrame(nil, &f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func request(id uint32, class string, content string, kv ...string) frameSpec {
	return frameSpec{typ: TypeRequest, cmd: CmdRequest, id: id, timeout: 3000, class: class, kv: kv, content: []byte(content)}
}

func oneway(id uint32, class string, content string, kv ...string) frameSpec {
	return frameSpec{typ: TypeOneway, cmd: CmdRequest, id: id, timeout: -1, class: class, kv: kv, content: []byte(content)}
}

func response(id uint32, st Status, class string, content string, kv ...string) frameSpec {
	return frameSpec{typ: TypeResponse, cmd: CmdResponse, id: id, status: st, class: class, kv: kv, content: []byte(content)}
}

// headersOf decodes a frame's head part into a *Headers, as a codec would report it.
func headersOf(t testing.TB, frame []byte) *Headers {
	t.Helper()
	var f Frame
	n, cl, err := DecodeHead(frame, &f, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return newHeaders(frame[:n], &f, cl)
}

func get(t testing.TB, h protocol.Headers, name string) string {
	t.Helper()
	v, ok := h.Get(name)
	if !ok {
		t.Fatalf("Get(%q): missing", name)
	}
	return v
}

func sortedKV(kv []string) []string {
	out := append([]string(nil), kv...)
	sort.Strings(out)
	return out
}

func isConnErr(err error) bool { return errors.Is(err, protocol.ErrConnection) }

func cat2(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// newServer returns a server codec on a fake connection with a recording sink.
func newServer(opts CodecOptions) (*serverCodec, *fakeConn, *recSink) {
	c := &fakeConn{}
	s := &recSink{}
	return newServerCodec(c, s, Limits{}.WithDefaults(), opts.WithDefaults()), c, s
}

func newClient(opts CodecOptions) (*clientCodec, *fakeConn) {
	c := &fakeConn{}
	return newClientCodec(c, Limits{}.WithDefaults(), opts.WithDefaults()), c
}

// The codecs arm no timers: the fake accepts and ignores them.
func (c *fakeConn) Schedule(*reactor.Timer, time.Duration, func()) {}
func (c *fakeConn) Unschedule(*reactor.Timer) bool                 { return false }
