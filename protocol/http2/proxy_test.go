package http2

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/net/http2"

	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/reactor"
)

// bridge is a miniature stream manager that forwards streams between a server codec
// (downstream) and a client codec (upstream) the way the proposed pipeline/stream change
// does (README.md, "Back-pressure across the proxy"): body bytes go from one read view to
// the other codec's EncodeData; they are returned to the source's window (Consume) only
// when the destination did not have to queue them, otherwise when the destination reports
// the stream writable again. So a slow reader on one side closes the writer's window on
// the other side instead of growing the proxy's memory.
type bridge struct {
	t        *testing.T
	ds       *serverCodec
	uc       *clientCodec
	up       map[protocol.StreamID]protocol.StreamID // downstream id -> upstream id
	down     map[protocol.StreamID]protocol.StreamID // upstream id -> downstream id
	owedDown map[protocol.StreamID]int               // request bytes not yet returned to the client
	owedUp   map[protocol.StreamID]int               // response bytes not yet returned to the server
	resets   []string
	vec      [1][]byte
}

func newBridge(t *testing.T) *bridge {
	return &bridge{t: t, up: map[protocol.StreamID]protocol.StreamID{}, down: map[protocol.StreamID]protocol.StreamID{},
		owedDown: map[protocol.StreamID]int{}, owedUp: map[protocol.StreamID]int{}}
}

// reqSink is the server codec's sink.
type reqSink bridge

func (r *reqSink) OnHeaders(id protocol.StreamID, h protocol.Headers, end bool) {
	b := (*bridge)(r)
	uid, err := b.uc.NewStream((*respSink)(b))
	if err == nil {
		err = b.uc.EncodeHeaders(uid, h, end)
	}
	h.Release()
	if err != nil {
		b.ds.Reset(id, err)
		return
	}
	b.up[id], b.down[uid] = uid, id
}

func (r *reqSink) OnData(id protocol.StreamID, in reactor.View, n int, end bool) {
	b := (*bridge)(r)
	uid, ok := b.up[id]
	if !ok {
		in.Skip(n)
		b.ds.Consume(id, n)
		return
	}
	b.vec[0] = in.Peek(n)
	err := b.uc.EncodeData(uid, b.vec[:], end)
	b.vec[0] = nil
	in.Skip(n)
	if err != nil {
		b.ds.Reset(id, err)
		return
	}
	if b.uc.StreamCongested(uid) {
		b.owedDown[id] += n
	} else {
		b.ds.Consume(id, n)
	}
}

func (r *reqSink) OnTrailers(id protocol.StreamID, t protocol.Headers) {
	b := (*bridge)(r)
	if uid, ok := b.up[id]; ok {
		_ = b.uc.EncodeTrailers(uid, t)
	}
	t.Release()
}

func (r *reqSink) OnReset(id protocol.StreamID, err error) {
	b := (*bridge)(r)
	b.resets = append(b.resets, fmt.Sprintf("down %d: %v", id, err))
	if uid, ok := b.up[id]; ok {
		b.uc.Reset(uid, err)
	}
}

// OnStreamWritable: the downstream stream's response queue drained; the upstream may send
// what the bridge held back.
func (r *reqSink) OnStreamWritable(id protocol.StreamID) {
	b := (*bridge)(r)
	uid := b.up[id]
	if n := b.owedUp[uid]; n > 0 {
		b.owedUp[uid] = 0
		b.uc.Consume(uid, n)
	}
}

// respSink is the sink of every upstream stream.
type respSink bridge

func (r *respSink) OnHeaders(uid protocol.StreamID, h protocol.Headers, end bool) {
	b := (*bridge)(r)
	if err := b.ds.EncodeHeaders(b.down[uid], h, end); err != nil {
		b.uc.Reset(uid, err)
	}
	h.Release()
}

func (r *respSink) OnData(uid protocol.StreamID, in reactor.View, n int, end bool) {
	b := (*bridge)(r)
	id := b.down[uid]
	b.vec[0] = in.Peek(n)
	err := b.ds.EncodeData(id, b.vec[:], end)
	b.vec[0] = nil
	in.Skip(n)
	if err != nil {
		b.uc.Reset(uid, err)
		return
	}
	if b.ds.StreamCongested(id) {
		b.owedUp[uid] += n
	} else {
		b.uc.Consume(uid, n)
	}
}

func (r *respSink) OnTrailers(uid protocol.StreamID, t protocol.Headers) {
	b := (*bridge)(r)
	_ = b.ds.EncodeTrailers(b.down[uid], t)
	t.Release()
}

func (r *respSink) OnReset(uid protocol.StreamID, err error) {
	b := (*bridge)(r)
	b.resets = append(b.resets, fmt.Sprintf("up %d: %v", uid, err))
	b.ds.Reset(b.down[uid], err)
}

func (r *respSink) OnStreamWritable(uid protocol.StreamID) {
	b := (*bridge)(r)
	id := b.down[uid]
	if n := b.owedDown[id]; n > 0 {
		b.owedDown[id] = 0
		b.ds.Consume(id, n)
	}
}

var (
	_ FlowSink = (*reqSink)(nil)
	_ FlowSink = (*respSink)(nil)
)

// proxyHarness: client peer -> server codec -> bridge -> client codec -> server peer.
type proxyHarness struct {
	t      *testing.T
	b      *bridge
	client *peer // the downstream client (x/net Framer)
	server *peer // the upstream server (x/net Framer)
	dconn  *fakeConn
	uconn  *fakeConn
	dpipe  *pipe
	upipe  *pipe
	// the upstream server's view of its send windows on stream 1 and the connection
	upWin, upConnWin int
	maxQueued        int
}

func newProxyHarness(t *testing.T, downSettings []http2.Setting, upSettings []http2.Setting) *proxyHarness {
	b := newBridge(t)
	h := &proxyHarness{t: t, b: b, client: newPeer(t), server: newPeer(t), dconn: &fakeConn{}, uconn: &fakeConn{}}
	b.ds = NewCodec(Config{}).NewServer(h.dconn, (*reqSink)(b)).(*serverCodec)
	b.uc = NewCodec(Config{}).NewClient(h.uconn).(*clientCodec)
	_ = b.ds.Flush()
	_ = b.uc.Flush()
	h.dpipe = &pipe{t: t, conn: h.dconn, codec: b.ds}
	h.upipe = &pipe{t: t, conn: h.uconn, codec: b.uc}
	h.uconn.out.Next(len(preface))
	h.upWin, h.upConnWin = 65536, 1<<20 // what the client codec's SETTINGS grant
	h.client.wbuf.WriteString(preface)
	_ = h.client.fr.WriteSettings(downSettings...)
	_ = h.client.fr.WriteSettingsAck()
	_ = h.server.fr.WriteSettings(upSettings...)
	_ = h.server.fr.WriteSettingsAck()
	h.pump()
	return h
}

// pump delivers what both peers wrote until nothing moves, flushing the other side after
// each read as the stream manager does, and returns the frames each peer received.
func (h *proxyHarness) pump() (down, up []string) {
	for i := 0; i < 100; i++ {
		moved := false
		if b := h.client.take(); len(b) > 0 {
			if err := h.dpipe.feed(b); err != nil {
				h.t.Fatalf("downstream Decode: %v", err)
			}
			_ = h.b.uc.Flush()
			moved = true
		}
		if b := h.server.take(); len(b) > 0 {
			if err := h.upipe.feed(b); err != nil {
				h.t.Fatalf("upstream Decode: %v", err)
			}
			_ = h.b.ds.Flush()
			moved = true
		}
		h.maxQueued = max(h.maxQueued, h.b.ds.queued, h.b.uc.queued)
		d := h.client.read(h.dconn.out.Bytes())
		h.dconn.out.Reset()
		u := h.server.read(h.uconn.out.Bytes())
		h.uconn.out.Reset()
		for _, f := range u {
			var id, inc int
			if _, err := fmt.Sscanf(f, "WINDOW_UPDATE %d %d", &id, &inc); err == nil {
				if id == 0 {
					h.upConnWin += inc
				} else {
					h.upWin += inc
				}
			}
		}
		down, up = append(down, d...), append(up, u...)
		if !moved && len(d) == 0 && len(u) == 0 {
			return down, up
		}
	}
	h.t.Fatal("pump does not settle")
	return
}

// serverSend has the upstream server send as much of body as its windows allow.
func (h *proxyHarness) serverSend(body []byte, off int, end bool) int {
	for off < len(body) {
		n := min(16384, len(body)-off, h.upWin, h.upConnWin)
		if n <= 0 {
			break
		}
		h.server.data(1, end && off+n == len(body), body[off:off+n])
		off += n
		h.upWin -= n
		h.upConnWin -= n
	}
	return off
}

// TestProxySlowConsumerSlowsProducer: a downstream client that does not read (its window
// closed) makes the proxy stop returning window to the upstream server, whose window
// closes: the proxy holds at most one upstream window of the response, not the response.
func TestProxySlowConsumerSlowsProducer(t *testing.T) {
	h := newProxyHarness(t, []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 16384}}, nil)
	h.client.headers(1, true, append(get("/pkg.Svc/Stream"), "content-type", "application/grpc", "te", "trailers")...)
	_, up := h.pump()
	if !has(up, "HEADERS 1 end :method=GET") {
		t.Fatalf("upstream frames %q", up)
	}
	body := bytes.Repeat([]byte("grpc-message-"), 80000) // 1,040,000 bytes
	h.server.headers(1, false, ":status", "200", "content-type", "application/grpc")
	off := h.serverSend(body, 0, false)
	h.pump()
	if off != 65536 || h.upWin != 0 {
		t.Fatalf("upstream sent %d, window %d", off, h.upWin)
	}
	// The client read 16 KiB and stopped: the rest waits in the proxy, the upstream's
	// window stays closed.
	for i := 0; i < 3; i++ {
		off = h.serverSend(body, off, false)
		h.pump()
	}
	if off != 65536 || h.upWin != 0 || h.client.bodies[1].Len() != 16384 {
		t.Fatalf("upstream sent %d (window %d), client got %d", off, h.upWin, h.client.bodies[1].Len())
	}
	if h.maxQueued > 65536 {
		t.Fatalf("proxy queued %d bytes", h.maxQueued)
	}
	// The client reads slowly: each WINDOW_UPDATE lets a little through, end to end.
	var all []string
	for h.client.bodies[1].Len() < len(body) {
		_ = h.client.fr.WriteWindowUpdate(1, 32768)
		_ = h.client.fr.WriteWindowUpdate(0, 32768)
		d, _ := h.pump()
		all = append(all, d...)
		if off < len(body) {
			off = h.serverSend(body, off, false)
			if off == len(body) {
				h.server.headers(1, true, "grpc-status", "0")
			}
			d, _ = h.pump()
			all = append(all, d...)
		}
		if h.maxQueued > 65536+16384 {
			t.Fatalf("proxy queued %d bytes", h.maxQueued)
		}
	}
	d, _ := h.pump()
	all = append(all, d...)
	if !bytes.Equal(h.client.bodies[1].Bytes(), body) {
		t.Fatalf("client got %d bytes", h.client.bodies[1].Len())
	}
	if all[len(all)-1] != "HEADERS 1 end grpc-status=0" {
		t.Fatalf("trailers not forwarded last: %q", all[max(0, len(all)-3):])
	}
	if len(h.b.ds.streams) != 0 || len(h.b.uc.streams) != 0 {
		t.Fatalf("streams left: down %d up %d", len(h.b.ds.streams), len(h.b.uc.streams))
	}
	t.Logf("max bytes queued in the proxy: %d for a %d-byte response", h.maxQueued, len(body))
}

// TestProxySlowUpstreamSlowsUpload: the same in the request direction.
func TestProxySlowUpstreamSlowsUpload(t *testing.T) {
	h := newProxyHarness(t, nil, []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 8192}})
	h.client.headers(1, false, post("/upload")...)
	h.pump()
	// The client sends as much as the proxy's stream window allows (65,536).
	sent := 0
	for i := 0; i < 4; i++ {
		h.client.data(1, false, make([]byte, 16384))
		sent += 16384
	}
	_, up := h.pump()
	got := 0
	for _, f := range up {
		var id, n int
		if _, err := fmt.Sscanf(f, "DATA %d %d", &id, &n); err == nil {
			got += n
		}
	}
	if got != 8192 || !h.b.uc.StreamCongested(1) {
		t.Fatalf("upstream got %d bytes", got)
	}
	// Nothing was returned to the client's stream window: it cannot send more.
	if h.b.ds.streams[1].recvWindow != 0 {
		t.Fatalf("client window %d", h.b.ds.streams[1].recvWindow)
	}
	// The upstream reads: the proxy drains and returns the window.
	_ = h.server.fr.WriteWindowUpdate(1, 1<<20)
	_ = h.server.fr.WriteWindowUpdate(0, 1<<20)
	down, _ := h.pump()
	if !has(down, "WINDOW_UPDATE 1 65536") {
		t.Fatalf("client frames %q", down)
	}
	if h.server.bodies[1].Len() != sent {
		t.Fatalf("upstream got %d", h.server.bodies[1].Len())
	}
}

// TestProxyResetPropagation: a cancelled call is cancelled upstream; an upstream reset
// reaches the client with its code where it means the same on both hops.
func TestProxyResetPropagation(t *testing.T) {
	h := newProxyHarness(t, nil, nil)
	h.client.headers(1, false, post("/a")...)
	h.client.headers(3, false, post("/b")...)
	h.client.headers(5, false, post("/c")...)
	h.pump()
	_ = h.client.fr.WriteRSTStream(1, http2.ErrCodeCancel)
	_, up := h.pump()
	if !has(up, "RST_STREAM 1 CANCEL") {
		t.Fatalf("upstream frames %q", up)
	}
	_ = h.server.fr.WriteRSTStream(3, http2.ErrCodeCancel)
	_ = h.server.fr.WriteRSTStream(5, http2.ErrCodeInternal)
	down, _ := h.pump()
	if !has(down, "RST_STREAM 3 CANCEL") || !has(down, "RST_STREAM 5 INTERNAL_ERROR") {
		t.Fatalf("client frames %q", down)
	}
	// Upstream GOAWAY: streams it never processed are refused, so a manager may retry.
	h.client.headers(7, true, get("/d")...)
	h.pump()
	_ = h.server.fr.WriteGoAway(3, http2.ErrCodeNo, nil)
	down, _ = h.pump()
	if !has(down, "RST_STREAM 7 REFUSED_STREAM") {
		t.Fatalf("client frames %q", down)
	}
	refused := false
	for _, r := range h.b.resets {
		refused = refused || strings.HasPrefix(r, "up 4:") && strings.Contains(r, protocol.ErrRefusedStream.Error())
	}
	if !refused {
		t.Fatalf("resets %q", h.b.resets)
	}
}

// TestProxyGRPCUnary: a unary call end to end: request with te: trailers, response with a
// trailers-only error and a normal one with grpc-status trailers.
func TestProxyGRPCUnary(t *testing.T) {
	h := newProxyHarness(t, nil, nil)
	msg := []byte("\x00\x00\x00\x00\x03abc")
	h.client.headers(1, false, append(post("/pkg.Svc/Unary"), "content-type", "application/grpc", "te", "trailers", "grpc-timeout", "1S")...)
	h.client.data(1, true, msg)
	_, up := h.pump()
	if !has(up, "HEADERS 1 :method=POST :scheme=http :authority=example.com :path=/pkg.Svc/Unary content-type=application/grpc te=trailers grpc-timeout=1S") ||
		!bytes.Equal(h.server.bodies[1].Bytes(), msg) {
		t.Fatalf("upstream frames %q", up)
	}
	h.server.headers(1, false, ":status", "200", "content-type", "application/grpc")
	h.server.data(1, false, msg)
	h.server.headers(1, true, "grpc-status", "0", "grpc-message", "OK")
	down, _ := h.pump()
	want := []string{"HEADERS 1 :status=200 content-type=application/grpc", "DATA 1 8", "HEADERS 1 end grpc-status=0 grpc-message=OK"}
	if fmt.Sprint(down) != fmt.Sprint(want) {
		t.Fatalf("client frames\n got %q\nwant %q", down, want)
	}
	// Trailers-only response (an error status without a body).
	h.client.headers(3, true, append(post("/pkg.Svc/Unary"), "content-type", "application/grpc")...)
	h.pump()
	h.server.headers(3, true, ":status", "200", "content-type", "application/grpc", "grpc-status", "5", "grpc-message", "not found")
	down, _ = h.pump()
	if fmt.Sprint(down) != "[HEADERS 3 end :status=200 content-type=application/grpc grpc-status=5 grpc-message=not found]" {
		t.Fatalf("client frames %q", down)
	}
	if errors.Is(nil, protocol.ErrConnection) || len(h.b.ds.streams)+len(h.b.uc.streams) != 0 {
		t.Fatal("streams left")
	}
}
