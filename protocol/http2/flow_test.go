package http2

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"golang.org/x/net/http2"

	"github.com/strait-proxy/strait/protocol"
)

// TestSendWindowExhaustedAndReopened: bytes beyond the peer's stream window are queued,
// reported congested, and sent (trailers after them) as WINDOW_UPDATE frames arrive; the
// FlowSink hears when the queue emptied.
func TestSendWindowExhaustedAndReopened(t *testing.T) {
	fs := &flowSink{recSink: newRecSink()}
	h := newServerHarness(t, Config{}, fs, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 10})
	h.p.headers(1, true, get("/")...)
	h.mustFeed()
	if err := h.s.EncodeHeaders(1, protocol.NewHeaderList(":status", "200"), false); err != nil {
		t.Fatal(err)
	}
	body := []byte("0123456789abcdefghijklmno")
	if err := h.s.EncodeData(1, [][]byte{body[:7], body[7:]}, false); err != nil {
		t.Fatal(err)
	}
	if got := h.frames(); fmt.Sprint(got) != "[HEADERS 1 :status=200 DATA 1 10]" {
		t.Fatalf("frames %q", got)
	}
	if !h.s.StreamCongested(1) || h.s.queued != 15 {
		t.Fatalf("congested %v queued %d", h.s.StreamCongested(1), h.s.queued)
	}
	_ = h.p.fr.WriteWindowUpdate(1, 5)
	h.mustFeed()
	if got := h.frames(); fmt.Sprint(got) != "[DATA 1 5]" || len(fs.writable) != 0 {
		t.Fatalf("frames %q writable %v", got, fs.writable)
	}
	_ = h.p.fr.WriteWindowUpdate(1, 12)
	h.mustFeed()
	if got := h.frames(); fmt.Sprint(got) != "[DATA 1 10]" || fmt.Sprint(fs.writable) != "[1]" || h.s.StreamCongested(1) {
		t.Fatalf("frames %q writable %v", got, fs.writable)
	}
	// Window left: 2. Trailers wait behind queued bytes and follow them.
	if err := h.s.EncodeData(1, [][]byte{[]byte("pqrs")}, false); err != nil {
		t.Fatal(err)
	}
	if err := h.s.EncodeTrailers(1, protocol.NewHeaderList("Grpc-Status", "0", "connection", "x")); err != nil {
		t.Fatal(err)
	}
	if err := h.s.EncodeData(1, [][]byte{[]byte("x")}, false); !errors.Is(err, ErrStreamState) {
		t.Fatalf("data after trailers: %v", err)
	}
	if got := h.frames(); fmt.Sprint(got) != "[DATA 1 2]" {
		t.Fatalf("frames %q", got)
	}
	_ = h.p.fr.WriteWindowUpdate(1, 100)
	h.mustFeed()
	if got := h.frames(); fmt.Sprint(got) != "[DATA 1 2 HEADERS 1 end grpc-status=0]" {
		t.Fatalf("frames %q", got)
	}
	if h.p.bodies[1].String() != string(body)+"pqrs" {
		t.Fatalf("body %q", h.p.bodies[1])
	}
	if len(h.s.streams) != 0 || h.s.queued != 0 {
		t.Fatalf("streams %d queued %d", len(h.s.streams), h.s.queued)
	}
	fs.release()
}

// TestConnectionWindowShared: the peer's connection window bounds all streams; a
// WINDOW_UPDATE on stream 0 releases the queued bytes round robin, in frames of at most the
// peer's SETTINGS_MAX_FRAME_SIZE.
func TestConnectionWindowShared(t *testing.T) {
	rec := newRecSink()
	h := newServerHarness(t, Config{}, rec, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
	h.p.headers(1, true, get("/a")...)
	h.p.headers(3, true, get("/b")...)
	h.mustFeed()
	a := bytes.Repeat([]byte("a"), 40000)
	b := bytes.Repeat([]byte("b"), 40000)
	_ = h.s.EncodeHeaders(1, protocol.NewHeaderList(":status", "200"), false)
	_ = h.s.EncodeData(1, [][]byte{a}, true)
	_ = h.s.EncodeHeaders(3, protocol.NewHeaderList(":status", "200"), false)
	_ = h.s.EncodeData(3, [][]byte{b}, true)
	got := h.frames()
	want := []string{"HEADERS 1 :status=200", "DATA 1 16384", "DATA 1 16384", "DATA 1 7232 end", "HEADERS 3 :status=200", "DATA 3 16384", "DATA 3 9151"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("frames\n got %q\nwant %q", got, want)
	}
	_ = h.p.fr.WriteWindowUpdate(0, 10000)
	h.mustFeed()
	if got := h.frames(); fmt.Sprint(got) != "[DATA 3 10000]" {
		t.Fatalf("frames %q", got)
	}
	_ = h.p.fr.WriteWindowUpdate(0, 1<<20)
	h.mustFeed()
	if got := h.frames(); fmt.Sprint(got) != "[DATA 3 4465 end]" {
		t.Fatalf("frames %q", got)
	}
	if h.p.bodies[3].Len() != 40000 || len(h.s.streams) != 0 {
		t.Fatalf("body %d streams %d", h.p.bodies[3].Len(), len(h.s.streams))
	}
	rec.release()
}

// TestInitialWindowChange: SETTINGS_INITIAL_WINDOW_SIZE applies to open streams, down
// (the window goes negative) and up (queued bytes leave).
func TestInitialWindowChange(t *testing.T) {
	rec := newRecSink()
	h := newServerHarness(t, Config{}, rec, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	h.p.headers(1, true, get("/")...)
	h.mustFeed()
	_ = h.s.EncodeHeaders(1, protocol.NewHeaderList(":status", "200"), false)
	_ = h.s.EncodeData(1, [][]byte{[]byte("0123456789")}, true)
	if got := h.frames(); fmt.Sprint(got) != "[HEADERS 1 :status=200]" {
		t.Fatalf("frames %q", got)
	}
	_ = h.p.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 4})
	h.mustFeed()
	if got := h.frames(); fmt.Sprint(got) != "[SETTINGS ack DATA 1 4]" {
		t.Fatalf("frames %q", got)
	}
	_ = h.p.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1})
	_ = h.p.fr.WriteWindowUpdate(1, 2) // window 1-4+2 = -1
	h.mustFeed()
	if got := h.frames(); fmt.Sprint(got) != "[SETTINGS ack]" {
		t.Fatalf("frames %q", got)
	}
	_ = h.p.fr.WriteWindowUpdate(1, 7)
	h.mustFeed()
	if got := h.frames(); fmt.Sprint(got) != "[DATA 1 6 end]" {
		t.Fatalf("frames %q", got)
	}
	rec.release()
}

// TestSendBufferBounded: past MaxStreamSendBuffer (or MaxConnSendBuffer) the stream is
// reset instead of growing memory.
func TestSendBufferBounded(t *testing.T) {
	rec := newRecSink()
	h := newServerHarness(t, Config{MaxStreamSendBuffer: 1000, MaxConnSendBuffer: 1500}, rec,
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	for id := uint32(1); id <= 5; id += 2 {
		h.p.headers(id, true, get("/")...)
	}
	h.mustFeed()
	for id := protocol.StreamID(1); id <= 5; id += 2 {
		_ = h.s.EncodeHeaders(id, protocol.NewHeaderList(":status", "200"), false)
	}
	if err := h.s.EncodeData(1, [][]byte{make([]byte, 1001)}, false); !errors.Is(err, ErrSendBufferOverflow) {
		t.Fatalf("stream limit: %v", err)
	}
	if err := h.s.EncodeData(3, [][]byte{make([]byte, 800)}, false); err != nil {
		t.Fatal(err)
	}
	if err := h.s.EncodeData(5, [][]byte{make([]byte, 800)}, false); !errors.Is(err, ErrSendBufferOverflow) {
		t.Fatalf("connection limit: %v", err)
	}
	got := h.frames()
	if !has(got, "RST_STREAM 1 INTERNAL_ERROR") || !has(got, "RST_STREAM 5 INTERNAL_ERROR") || h.s.queued != 800 {
		t.Fatalf("frames %q queued %d", got, h.s.queued)
	}
	rec.release()
}

// TestReceiveCreditFollowsConsume: with a FlowSink, the stream window is returned only for
// bytes the sink consumed; a peer that ignores the window gets FLOW_CONTROL_ERROR.
func TestReceiveCreditFollowsConsume(t *testing.T) {
	fs := &flowSink{recSink: newRecSink()}
	h := newServerHarness(t, Config{}, fs)
	h.p.headers(1, false, post("/")...)
	chunk := bytes.Repeat([]byte("z"), 16384)
	for i := 0; i < 4; i++ {
		h.p.data(1, false, chunk)
	}
	h.mustFeed()
	if got := h.frames(); len(got) != 0 {
		t.Fatalf("credit returned before Consume: %q", got)
	}
	// The window is exhausted (65,536): one more byte is a flow-control violation.
	h.s.Consume(1, 30000)
	if got := h.frames(); fmt.Sprint(got) != "[]" {
		t.Fatalf("credit below half a window: %q", got)
	}
	h.s.Consume(1, 10000)
	if got := h.frames(); fmt.Sprint(got) != "[WINDOW_UPDATE 1 40000]" {
		t.Fatalf("frames %q", got)
	}
	h.s.Consume(1, 1<<20) // more than was received: clamped
	if got := h.frames(); fmt.Sprint(got) != "[]" {
		t.Fatalf("frames %q", got)
	}
	for i := 0; i < 3; i++ {
		h.p.data(1, false, chunk) // 49,152 > the 40,000 returned
	}
	h.mustFeed()
	got := h.frames()
	if !has(got, "RST_STREAM 1 FLOW_CONTROL_ERROR") || !errors.Is(fs.resets[1], ErrFlowControl) {
		t.Fatalf("frames %q reset %v", got, fs.resets[1])
	}
	fs.release()
}

func TestConnectionWindowViolation(t *testing.T) {
	fs := &flowSink{recSink: newRecSink()}
	// The connection window is returned as bytes arrive, so only a frame larger than the
	// whole window can overrun it.
	h := newServerHarness(t, Config{InitialConnWindow: 65535, InitialStreamWindow: 1 << 20, MaxFrameSize: 1 << 17}, fs)
	h.p.headers(1, false, post("/")...)
	h.p.data(1, false, make([]byte, 65536))
	err := h.feed()
	if connCode(t, err) != http2.ErrCodeFlowControl {
		t.Fatalf("err %v", err)
	}
	if got := h.frames(); !has(got, "GOAWAY 1 FLOW_CONTROL_ERROR") {
		t.Fatalf("frames %q", got)
	}
	fs.release()
}

func TestWindowUpdateOverflowAndZero(t *testing.T) {
	rec := newRecSink()
	h := newServerHarness(t, Config{}, rec)
	h.p.headers(1, false, post("/")...)
	h.p.headers(3, false, post("/")...)
	_ = h.p.fr.WriteWindowUpdate(1, 1<<31-1)
	h.p.fr.AllowIllegalWrites = true
	_ = h.p.fr.WriteWindowUpdate(3, 0)
	h.mustFeed()
	got := h.frames()
	if fmt.Sprint(got) != "[RST_STREAM 1 FLOW_CONTROL_ERROR RST_STREAM 3 PROTOCOL_ERROR]" {
		t.Fatalf("frames %q", got)
	}
	_ = h.p.fr.WriteWindowUpdate(0, 1<<31-1)
	if err := h.feed(); connCode(t, err) != http2.ErrCodeFlowControl {
		t.Fatalf("connection overflow: %v", err)
	}
	h2 := newServerHarness(t, Config{}, newRecSink())
	h2.p.fr.AllowIllegalWrites = true
	_ = h2.p.fr.WriteWindowUpdate(0, 0)
	if err := h2.feed(); connCode(t, err) != http2.ErrCodeProtocol {
		t.Fatalf("zero increment on the connection: %v", err)
	}
	// A SETTINGS_INITIAL_WINDOW_SIZE that overflows an open stream's window.
	h3 := newServerHarness(t, Config{}, newRecSink())
	h3.p.headers(1, false, post("/")...)
	_ = h3.p.fr.WriteWindowUpdate(1, 1<<31-1-65535)
	_ = h3.p.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65536})
	if err := h3.feed(); connCode(t, err) != http2.ErrCodeFlowControl {
		t.Fatalf("settings overflow: %v", err)
	}
	rec.release()
}

// TestSmallWindowBeforeAck: a stream window configured below 65,535 is enforced only once
// the peer acknowledged the SETTINGS announcing it (until then it may use the default).
func TestSmallWindowBeforeAck(t *testing.T) {
	rec := newRecSink()
	conn := &fakeConn{}
	s := NewCodec(Config{InitialStreamWindow: 1000}).NewServer(conn, &flowSink{recSink: rec}).(*serverCodec)
	p := newPeer(t)
	p.wbuf.WriteString(preface)
	_ = p.fr.WriteSettings()
	p.headers(1, false, post("/")...)
	p.data(1, false, make([]byte, 5000))
	pp := &pipe{t: t, conn: conn, codec: s}
	if err := pp.feed(p.take()); err != nil {
		t.Fatal(err)
	}
	if rec.body(1) != string(make([]byte, 5000)) || len(rec.resets) != 0 {
		t.Fatalf("body %d resets %v", rec.bodies[1].Len(), rec.resets)
	}
	_ = p.fr.WriteSettingsAck()
	p.data(1, false, make([]byte, 1000)) // remaining window: 65,535 - 5,000 + (1,000 - 65,535) < 0
	if err := pp.feed(p.take()); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(rec.resets[1], ErrFlowControl) {
		t.Fatalf("reset %v", rec.resets[1])
	}
	rec.release()
}
