package bolt

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/strait-proxy/strait/protocol"
)

func TestClientAllocatesIDs(t *testing.T) {
	c, _ := newClient(CodecOptions{MaxStreams: 3})
	sink := &recSink{}
	var got []uint64
	for range 3 {
		id, err := c.NewStream(sink)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, id)
	}
	if !reflect.DeepEqual(got, []uint64{1, 2, 3}) || c.ActiveStreams() != 3 || c.MaxStreams() != 3 {
		t.Fatalf("ids %v active %d", got, c.ActiveStreams())
	}
	if _, err := c.NewStream(sink); !errors.Is(err, ErrTooManyStreams) {
		t.Fatalf("past MaxStreams: %v", err)
	}
	// Wrapping: 0 is skipped, and so are ids still in flight (1 and 3; 2 is done).
	c.Reset(2, errors.New("done"))
	c.next = math.MaxUint32 - 1
	c.opts.MaxStreams = 10
	got = got[:0]
	for range 3 {
		id, err := c.NewStream(sink)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, id)
	}
	if !reflect.DeepEqual(got, []uint64{math.MaxUint32, 2, 4}) {
		t.Fatalf("ids after wrapping %v", got)
	}
}

// A Bolt request from a Bolt downstream is forwarded byte for byte, with this connection's
// request id, head and content in one writev.
func TestClientRewritesBoltRequest(t *testing.T) {
	c, conn := newClient(CodecOptions{})
	orig := request(777, "com.alipay.Echo", "payload", "service", "com.alipay.Echo:1.0", "dup", "1", "dup", "2").bytes(t)
	orig[9] = 11 // a serializer id other than Hessian2
	h := headersOf(t, orig)
	defer h.Release()
	id, err := c.NewStream(&recSink{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.EncodeHeaders(id, h, false); err != nil {
		t.Fatal(err)
	}
	if conn.ops != 0 {
		t.Fatal("head written before its content")
	}
	if err := c.EncodeData(id, [][]byte{[]byte("pay"), []byte("load")}, true); err != nil {
		t.Fatal(err)
	}
	want := bytes.Clone(orig)
	if err := SetRequestID(want, uint32(id)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(conn.wire.Bytes(), want) || conn.ops != 1 {
		t.Fatalf("%d writes\n got %x\nwant %x", conn.ops, conn.wire.Bytes(), want)
	}
}

func TestClientReencodesModifiedRequest(t *testing.T) {
	c, conn := newClient(CodecOptions{})
	orig := request(5, "com.Svc", "", "keep", "1", "drop", "x", "nullable", "")
	raw := orig.bytes(t)
	// Make "nullable" a null value (-1), which must survive re-encoding as null.
	raw = append(raw[:len(raw)-4], 0xFF, 0xFF, 0xFF, 0xFF)
	h := headersOf(t, raw)
	defer h.Release()
	h.Del("drop")
	h.Set("added", "yes")
	h.Set(protocol.Authority, "ignored.example") // no place on the Bolt wire
	h.Set(protocol.Path, "com.Renamed")
	id, _ := c.NewStream(&recSink{})
	if err := c.EncodeHeaders(id, h, true); err != nil {
		t.Fatal(err)
	}
	var f Frame
	if _, err := Decode(conn.wire.Bytes(), &f, Limits{}); err != nil {
		t.Fatal(err)
	}
	m := msgOf(&f)
	want := msg{kind: KindRequest, id: 1, codec: 1, version: 1, timeout: 3000, class: "com.Renamed",
		header: []string{"keep=1", "nullable=", "added=yes"}}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("re-encoded %+v\nwant %+v", m, want)
	}
	if v, ok := f.Header.Get("nullable"); !ok || v != nil {
		t.Fatalf("null value became %q", v)
	}
}

func TestClientResponsesMatchedOutOfOrder(t *testing.T) {
	c, _ := newClient(CodecOptions{})
	sinks := map[uint64]*recSink{}
	for range 3 {
		s := &recSink{keepHeads: true}
		id, _ := c.NewStream(s)
		sinks[id] = s
		h := headersOf(t, request(100, "svc", "").bytes(t))
		if err := c.EncodeHeaders(id, h, true); err != nil {
			t.Fatal(err)
		}
		h.Release()
	}
	in := cat2(
		response(3, StatusSuccess, "java.lang.String", "three", "k", "v").bytes(t),
		response(99, StatusSuccess, "", "unknown id: skipped").bytes(t),
		response(1, StatusTimeout, "", "").bytes(t),
		AppendHeartbeatAck(nil, 50),
		response(2, StatusServerThreadpoolBusy, "", "two").bytes(t),
	)
	if err := c.Decode(&fakeView{b: in}); err != nil {
		t.Fatal(err)
	}
	want := map[uint64][]string{
		3: {`headers(3,[{:status 200} {k v}],end=false)`, `data(3,"three",end=true)`},
		1: {`headers(1,[{:status 504}],end=true)`},
		2: {`headers(2,[{:status 503}],end=false)`, `data(2,"two",end=true)`},
	}
	for id, s := range sinks {
		if got := merged(s.events); !reflect.DeepEqual(got, want[id]) {
			t.Fatalf("stream %d: %q, want %q", id, got, want[id])
		}
	}
	if h := sinks[2].heads[2].(*Headers); h.BoltStatus() != StatusServerThreadpoolBusy || h.ContentLength() != 3 {
		t.Fatalf("raw status %v", h.BoltStatus())
	}
	if c.ActiveStreams() != 0 || !c.Reusable() {
		t.Fatalf("active %d reusable %v", c.ActiveStreams(), c.Reusable())
	}
}

// ActiveStreams already counts a stream out when its last callback runs, so the stream manager
// can reuse the connection from inside it.
func TestClientStreamFinishedBeforeLastCallback(t *testing.T) {
	c, _ := newClient(CodecOptions{})
	s := &recSink{}
	id, _ := c.NewStream(s)
	h := headersOf(t, request(1, "svc", "").bytes(t))
	defer h.Release()
	if err := c.EncodeHeaders(id, h, true); err != nil {
		t.Fatal(err)
	}
	var active []int
	s.onHeaders = func(uint64, protocol.Headers, bool) { active = append(active, c.ActiveStreams()) }
	s.onData = func(_ uint64, end bool) { active = append(active, c.ActiveStreams()) }
	if err := c.Decode(&fakeView{b: response(1, StatusSuccess, "", "abc").bytes(t)}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(active, []int{1, 0}) {
		t.Fatalf("active streams seen by callbacks %v", active)
	}
}

func TestClientOnewayCompletesOnceWritten(t *testing.T) {
	c, conn := newClient(CodecOptions{})
	s := &recSink{keepHeads: true}
	id, _ := c.NewStream(s)
	h := headersOf(t, oneway(40, "svc", "fire").bytes(t))
	defer h.Release()
	if err := c.EncodeHeaders(id, h, false); err != nil {
		t.Fatal(err)
	}
	if err := c.EncodeData(id, [][]byte{[]byte("fire")}, true); err != nil {
		t.Fatal(err)
	}
	if len(s.events) != 0 {
		t.Fatalf("completed inside EncodeData: %v", s.events)
	}
	conn.runExecs()
	want := []string{`headers(1,[{:status 200}],end=true)`}
	if got := merged(s.events); !reflect.DeepEqual(got, want) {
		t.Fatalf("events %q", got)
	}
	if hh := s.heads[1].(*Headers); hh.Kind() != KindResponse || hh.BoltStatus() != StatusSuccess {
		t.Fatalf("synthetic head %v %v", hh.Kind(), hh.BoltStatus())
	}
	s.heads[1].Release()
	if c.ActiveStreams() != 0 {
		t.Fatalf("active %d", c.ActiveStreams())
	}
	if got := frames(t, conn.wire.Bytes()); len(got) != 1 || got[0].kind != KindOneway || got[0].content != "fire" {
		t.Fatalf("wire %+v", got)
	}
	// A (bogus) response for it is skipped.
	if err := c.Decode(&fakeView{b: response(1, StatusSuccess, "", "x").bytes(t)}); err != nil || len(s.events) != 1 {
		t.Fatalf("Decode = %v, events %v", err, s.events)
	}
}

func TestClientResetForgetsStream(t *testing.T) {
	c, _ := newClient(CodecOptions{})
	s1, s2 := &recSink{}, &recSink{}
	id1, _ := c.NewStream(s1)
	id2, _ := c.NewStream(s2)
	for _, id := range []uint64{id1, id2} {
		h := headersOf(t, request(1, "svc", "").bytes(t))
		if err := c.EncodeHeaders(id, h, true); err != nil {
			t.Fatal(err)
		}
		h.Release()
	}
	c.Reset(id1, errors.New("timeout"))
	// Stream 2 resets itself while its response content is passing.
	s2.onData = func(id uint64, end bool) { c.Reset(id, errors.New("downstream gone")) }
	in := cat2(response(1, StatusSuccess, "", "late").bytes(t), response(2, StatusSuccess, "", "0123456789").bytes(t))
	fd := &feeder{decode: c.Decode}
	if err := fd.feed(in[:len(in)-5]); err != nil {
		t.Fatal(err)
	}
	if err := fd.feed(in[len(in)-5:]); err != nil {
		t.Fatal(err)
	}
	if len(s1.events) != 0 {
		t.Fatalf("reset stream got %v", s1.events)
	}
	if got := merged(s2.events); len(got) != 2 || !strings.HasPrefix(got[1], `data(2,"01234",end=false)`) {
		t.Fatalf("stream 2: %q", got)
	}
	if c.ActiveStreams() != 0 || len(fd.pending) != 0 || !c.Reusable() {
		t.Fatalf("active %d pending %d", c.ActiveStreams(), len(fd.pending))
	}
	// The connection goes on.
	s3 := &recSink{}
	id3, _ := c.NewStream(s3)
	h := headersOf(t, request(1, "svc", "").bytes(t))
	defer h.Release()
	if err := c.EncodeHeaders(id3, h, true); err != nil {
		t.Fatal(err)
	}
	if err := c.Decode(&fakeView{b: response(uint32(id3), StatusSuccess, "", "ok").bytes(t)}); err != nil || len(s3.events) != 2 {
		t.Fatalf("Decode = %v, events %v", err, s3.events)
	}
}

func TestClientFatalErrorMakesItNotReusable(t *testing.T) {
	c, _ := newClient(CodecOptions{})
	s := &recSink{}
	id, _ := c.NewStream(s)
	err := c.Decode(&fakeView{b: []byte("HTTP/1.1 200 OK\r\n\r\n")})
	if !isConnErr(err) || c.Reusable() {
		t.Fatalf("Decode = %v, reusable %v", err, c.Reusable())
	}
	if _, err := c.NewStream(s); !errors.Is(err, ErrNotReusable) {
		t.Fatalf("NewStream after the error: %v", err)
	}
	if err := c.Decode(&fakeView{b: response(uint32(id), 0, "", "").bytes(t)}); !isConnErr(err) || len(s.events) != 0 {
		t.Fatalf("Decode after the error = %v, events %v", err, s.events)
	}
}

func TestClientBadHeaderResetsStream(t *testing.T) {
	c, _ := newClient(CodecOptions{})
	s := &recSink{}
	id, _ := c.NewStream(s)
	h := headersOf(t, request(1, "svc", "").bytes(t))
	defer h.Release()
	if err := c.EncodeHeaders(id, h, true); err != nil {
		t.Fatal(err)
	}
	bad := response(uint32(id), StatusSuccess, "", "body").bytes(t)
	bad = append(bad[:ResponseHeadLen:ResponseHeadLen], cat2(be32(-5), []byte("body"))...)
	bad[15] = 4 // headerLen
	if err := c.Decode(&fakeView{b: bad}); err != nil {
		t.Fatal(err)
	}
	var se *protocol.StreamError
	if len(s.events) != 1 || s.events[0].kind != "reset" || !errors.As(s.events[0].err, &se) ||
		se.Code != uint32(StatusCodecException) || !errors.Is(se, ErrBadHeader) {
		t.Fatalf("events %v", s.events)
	}
	if c.ActiveStreams() != 0 || !c.Reusable() {
		t.Fatalf("active %d", c.ActiveStreams())
	}
}

func TestClientAnswersServerHeartbeat(t *testing.T) {
	c, conn := newClient(CodecOptions{})
	if err := c.Decode(&fakeView{b: AppendHeartbeat(nil, 12)}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(conn.wire.Bytes(), AppendHeartbeatAck(nil, 12)) {
		t.Fatalf("wire %x", conn.wire.Bytes())
	}
}

// A request from a non-Bolt downstream (an HTTP head) becomes a Bolt request.
func TestClientForeignRequest(t *testing.T) {
	t.Run("known length", func(t *testing.T) {
		c, conn := newClient(CodecOptions{})
		id, _ := c.NewStream(&recSink{})
		h := protocol.NewHeaderList(":method", "POST", ":path", "com.Svc", ":authority", "x",
			"content-length", "5", "x-trace", "abc", "Connection", "keep-alive")
		if err := c.EncodeHeaders(id, h, false); err != nil {
			t.Fatal(err)
		}
		if err := c.EncodeData(id, [][]byte{[]byte("he"), []byte("llo")}, true); err != nil {
			t.Fatal(err)
		}
		want := msg{kind: KindRequest, id: 1, codec: CodecHessian2, version: 1, timeout: -1, class: "com.Svc",
			header: []string{"x-trace=abc"}, content: "hello"}
		if got := frames(t, conn.wire.Bytes()); len(got) != 1 || !reflect.DeepEqual(got[0], want) || conn.ops != 1 {
			t.Fatalf("wire %+v (%d writes)\nwant %+v", got, conn.ops, want)
		}
	})
	t.Run("unknown length", func(t *testing.T) {
		c, conn := newClient(CodecOptions{})
		id, _ := c.NewStream(&recSink{})
		h := protocol.NewHeaderList(":path", "com.Svc", "transfer-encoding", "chunked")
		if err := c.EncodeHeaders(id, h, false); err != nil {
			t.Fatal(err)
		}
		for _, part := range []string{"chunk1-", "chunk2-", ""} {
			if err := c.EncodeData(id, [][]byte{[]byte(part)}, false); err != nil {
				t.Fatal(err)
			}
		}
		if conn.ops != 0 {
			t.Fatal("wrote before the length was known")
		}
		if err := c.EncodeTrailers(id, protocol.NewHeaderList("grpc-status", "0")); err != nil {
			t.Fatal(err)
		}
		want := msg{kind: KindRequest, id: 1, codec: CodecHessian2, version: 1, timeout: -1, class: "com.Svc",
			content: "chunk1-chunk2-"}
		if got := frames(t, conn.wire.Bytes()); len(got) != 1 || !reflect.DeepEqual(got[0], want) {
			t.Fatalf("wire %+v\nwant %+v", got, want)
		}
	})
	t.Run("too large", func(t *testing.T) {
		c, _ := newClient(CodecOptions{})
		c.lim.MaxFrame = 100
		id, _ := c.NewStream(&recSink{})
		if err := c.EncodeHeaders(id, protocol.NewHeaderList(":path", "s"), false); err != nil {
			t.Fatal(err)
		}
		if err := c.EncodeData(id, [][]byte{make([]byte, 200)}, false); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("EncodeData = %v", err)
		}
		c.Reset(id, errors.New("failed"))
		if c.ActiveStreams() != 0 {
			t.Fatal("stream kept")
		}
	})
}

// Requests of different downstream streams sharing one upstream connection never interleave.
func TestClientFramesStayContiguous(t *testing.T) {
	c, conn := newClient(CodecOptions{})
	a, _ := c.NewStream(&recSink{})
	b, _ := c.NewStream(&recSink{})
	ha := headersOf(t, request(1, "a", "AAAAAAAAAA").bytes(t))
	hb := headersOf(t, request(1, "b", "BBBB").bytes(t))
	defer ha.Release()
	defer hb.Release()
	if err := c.EncodeHeaders(a, ha, false); err != nil {
		t.Fatal(err)
	}
	if err := c.EncodeData(a, [][]byte{[]byte("AAAA")}, false); err != nil {
		t.Fatal(err)
	}
	if err := c.EncodeHeaders(b, hb, false); err != nil {
		t.Fatal(err)
	}
	if err := c.EncodeData(b, [][]byte{[]byte("BBBB")}, true); err != nil {
		t.Fatal(err)
	}
	if err := c.EncodeData(a, [][]byte{[]byte("AAAAAA")}, true); err != nil {
		t.Fatal(err)
	}
	got := frames(t, conn.wire.Bytes())
	if len(got) != 2 || got[0].class != "a" || got[0].content != "AAAAAAAAAA" || got[1].class != "b" || got[1].content != "BBBB" {
		t.Fatalf("wire %+v", got)
	}
}

// A stream abandoned while its request is half on the wire cannot be completed: the
// connection is closed; one whose request is only held is dropped quietly.
func TestClientResetDuringRequest(t *testing.T) {
	c, conn := newClient(CodecOptions{})
	a, _ := c.NewStream(&recSink{})
	b, _ := c.NewStream(&recSink{})
	ha := headersOf(t, request(1, "a", "0123456789").bytes(t))
	defer ha.Release()
	if err := c.EncodeHeaders(b, ha, false); err != nil {
		t.Fatal(err)
	}
	c.Reset(b, errors.New("gone"))
	if conn.closed || conn.ops != 0 || !c.Reusable() {
		t.Fatalf("held request: closed %v ops %d", conn.closed, conn.ops)
	}
	if err := c.EncodeHeaders(a, ha, false); err != nil {
		t.Fatal(err)
	}
	if err := c.EncodeData(a, [][]byte{[]byte("01234")}, false); err != nil {
		t.Fatal(err)
	}
	c.Reset(a, errors.New("gone"))
	if !conn.closed || c.Reusable() {
		t.Fatalf("half-written request: closed %v reusable %v", conn.closed, c.Reusable())
	}
}

func TestClientSplitAtEveryBoundary(t *testing.T) {
	stream := cat2(
		response(2, StatusSuccess, "java.lang.String", strings.Repeat("b", 40), "k", "v").bytes(t),
		AppendHeartbeat(nil, 1000),
		response(1, StatusServerException, "", "").bytes(t),
		response(42, StatusSuccess, "", "unknown").bytes(t),
		response(3, StatusSuccess, "", "ccc").bytes(t),
	)
	run := func(chunks [][]byte) ([]string, []byte) {
		c, conn := newClient(CodecOptions{})
		s := &recSink{}
		for range 3 {
			id, _ := c.NewStream(s)
			h := headersOf(t, request(1, "svc", "").bytes(t))
			if err := c.EncodeHeaders(id, h, true); err != nil {
				t.Fatal(err)
			}
			h.Release()
		}
		conn.wire.Reset()
		fd := &feeder{decode: c.Decode}
		for _, ch := range chunks {
			if err := fd.feed(ch); err != nil {
				t.Fatal(err)
			}
		}
		if len(fd.pending) != 0 || c.ActiveStreams() != 0 {
			t.Fatalf("%d bytes left, %d streams", len(fd.pending), c.ActiveStreams())
		}
		return merged(s.events), bytes.Clone(conn.wire.Bytes())
	}
	wantEv, wantWire := run([][]byte{stream})
	if len(wantEv) != 5 || !bytes.Equal(wantWire, AppendHeartbeatAck(nil, 1000)) {
		t.Fatalf("reference %q %x", wantEv, wantWire)
	}
	for i := 0; i <= len(stream); i++ {
		if ev, wire := run([][]byte{stream[:i], stream[i:]}); !reflect.DeepEqual(ev, wantEv) || !bytes.Equal(wire, wantWire) {
			t.Fatalf("split at %d:\n got %q\nwant %q", i, ev, wantEv)
		}
	}
}

// Bolt to Bolt through both codecs: what the upstream receives is the client's request and
// what the client receives is the upstream's response, byte for byte but for the ids.
func TestBoltToBoltFidelity(t *testing.T) {
	srv, down, dsink := newServer(CodecOptions{})
	cli, up := newClient(CodecOptions{})
	dsink.keepHeads = true
	req := request(0x0a0b0c0d, "com.alipay.sofa.rpc.core.request.SofaRequest", "hessian-bytes",
		"sofa_head_target_service", "com.Echo:1.0", "rpc_trace_context.sofaTraceId", "0a0b").bytes(t)
	req[4] = 2 // ver2 other than 1 is carried through
	if err := srv.Decode(&fakeView{b: req[:len(req)-3]}); err != nil {
		t.Fatal(err)
	}
	rsink := &recSink{keepHeads: true}
	upID, _ := cli.NewStream(rsink)
	if err := cli.EncodeHeaders(upID, dsink.heads[0x0a0b0c0d], false); err != nil {
		t.Fatal(err)
	}
	for _, e := range dsink.events[1:] {
		if err := cli.EncodeData(upID, [][]byte{e.data}, e.end); err != nil {
			t.Fatal(err)
		}
	}
	dsink.events = dsink.events[:0]
	if err := srv.Decode(&fakeView{b: req[len(req)-3:]}); err != nil {
		t.Fatal(err)
	}
	if err := cli.EncodeData(upID, [][]byte{dsink.events[0].data}, dsink.events[0].end); err != nil {
		t.Fatal(err)
	}
	want := bytes.Clone(req)
	_ = SetRequestID(want, uint32(upID))
	if !bytes.Equal(up.wire.Bytes(), want) {
		t.Fatalf("upstream got\n%x\nwant\n%x", up.wire.Bytes(), want)
	}
	resp := response(uint32(upID), StatusServerDeserialException, "com.alipay.sofa.rpc.core.response.SofaResponse", "err-bytes",
		"x", "y").bytes(t)
	resp[9] = 11
	if err := cli.Decode(&fakeView{b: resp}); err != nil {
		t.Fatal(err)
	}
	rh := rsink.heads[upID]
	if v := get(t, rh, protocol.Status); v != "500" {
		t.Fatalf(":status %q", v)
	}
	if err := srv.EncodeHeaders(0x0a0b0c0d, rh, false); err != nil {
		t.Fatal(err)
	}
	rh.Release()
	if err := srv.EncodeData(0x0a0b0c0d, [][]byte{rsink.events[1].data}, true); err != nil {
		t.Fatal(err)
	}
	want = bytes.Clone(resp)
	_ = SetRequestID(want, 0x0a0b0c0d)
	if !bytes.Equal(down.wire.Bytes(), want) || down.ops != 1 {
		t.Fatalf("client got (%d writes)\n%x\nwant\n%x", down.ops, down.wire.Bytes(), want)
	}
	dsink.heads[0x0a0b0c0d].Release()
}
