package http2

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/net/http2"

	"github.com/strait-proxy/strait/protocol"
)

func getReq(path string) *protocol.HeaderList {
	return protocol.NewHeaderList(":method", "GET", ":scheme", "http", ":authority", "up.local", ":path", path)
}

func postReq(path string) *protocol.HeaderList {
	return protocol.NewHeaderList(":method", "POST", ":scheme", "http", ":authority", "up.local", ":path", path)
}

func mustOpen(t *testing.T, c *clientCodec, sink protocol.Sink, h protocol.Headers, end bool) protocol.StreamID {
	t.Helper()
	id, err := c.NewStream(sink)
	if err != nil {
		t.Fatal(err)
	}
	if h != nil {
		if err := c.EncodeHeaders(id, h, end); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

func TestClientHandshakeAndLimits(t *testing.T) {
	conn := &fakeConn{}
	c := NewCodec(Config{}).NewClient(conn).(*clientCodec)
	p := newPeer(t)
	if !strings.HasPrefix(conn.out.String(), preface) {
		t.Fatal("no preface")
	}
	conn.out.Next(len(preface))
	got := p.read(conn.out.Bytes())
	want := []string{
		"SETTINGS ENABLE_PUSH=0,INITIAL_WINDOW_SIZE=65536,MAX_FRAME_SIZE=16384,MAX_HEADER_LIST_SIZE=61440",
		"WINDOW_UPDATE 0 983041",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("client preface\n got %q\nwant %q", got, want)
	}
	if c.MaxStreams() != 100 || !c.Reusable() || c.ActiveStreams() != 0 {
		t.Fatalf("before SETTINGS: max %d reusable %v", c.MaxStreams(), c.Reusable())
	}
	h := newClientHarness(t, Config{}, http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 2})
	if h.c.MaxStreams() != 2 {
		t.Fatalf("MaxStreams = %d, want the peer's 2", h.c.MaxStreams())
	}
	rec := newRecSink()
	mustOpen(t, h.c, rec, nil, false)
	mustOpen(t, h.c, rec, nil, false)
	if _, err := h.c.NewStream(rec); !errors.Is(err, ErrStreamLimit) {
		t.Fatalf("third stream: %v", err)
	}
}

// TestClientStreamIDs: ids reach the wire in increasing order, in the order heads are
// encoded, whatever order streams were created in.
func TestClientStreamIDs(t *testing.T) {
	h := newClientHarness(t, Config{})
	rec := newRecSink()
	a := mustOpen(t, h.c, rec, nil, false)
	b := mustOpen(t, h.c, rec, nil, false)
	if err := h.c.EncodeHeaders(b, getReq("/b"), true); err != nil {
		t.Fatal(err)
	}
	if err := h.c.EncodeHeaders(a, getReq("/a"), true); err != nil {
		t.Fatal(err)
	}
	got := h.frames()
	want := []string{
		"HEADERS 1 end :method=GET :scheme=http :authority=up.local :path=/b",
		"HEADERS 3 end :method=GET :scheme=http :authority=up.local :path=/a",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("frames\n got %q\nwant %q", got, want)
	}
	h.p.headers(3, true, ":status", "204")
	h.p.headers(1, true, ":status", "200")
	h.mustFeed()
	if fmt.Sprint(rec.events) != fmt.Sprintf("[H%d :status=204 end=true H%d :status=200 end=true]", a, b) {
		t.Fatalf("events %q", rec.events)
	}
	if h.c.ActiveStreams() != 0 {
		t.Fatalf("active %d", h.c.ActiveStreams())
	}
}

func TestClientResponseWithTrailers(t *testing.T) {
	h := newClientHarness(t, Config{})
	rec := newRecSink()
	id := mustOpen(t, h.c, rec, protocol.NewHeaderList(":method", "POST", ":scheme", "http", ":authority", "g",
		":path", "/pkg.Svc/M", "content-type", "application/grpc", "te", "trailers"), false)
	if err := h.c.EncodeData(id, [][]byte{[]byte("\x00\x00\x00\x00\x00")}, true); err != nil {
		t.Fatal(err)
	}
	if got := h.frames(); len(got) != 2 || got[1] != "DATA 1 5 end" {
		t.Fatalf("frames %q", got)
	}
	h.p.headers(1, false, ":status", "100")
	h.p.headers(1, false, ":status", "200", "content-type", "application/grpc")
	h.p.data(1, false, []byte("\x00\x00\x00\x00\x01z"))
	h.p.headers(1, true, "grpc-status", "0", "grpc-message", "")
	h.mustFeed()
	want := fmt.Sprintf("[H%d :status=200 content-type=application/grpc end=false T%d grpc-status=0 grpc-message=]", id, id)
	if fmt.Sprint(rec.events) != want || rec.body(id) != "\x00\x00\x00\x00\x01z" {
		t.Fatalf("events %q body %q", rec.events, rec.body(id))
	}
	if h.c.ActiveStreams() != 0 {
		t.Fatal("stream not finished")
	}
	rec.release()
}

func TestClientGoAwayRefusesLaterStreams(t *testing.T) {
	h := newClientHarness(t, Config{})
	rec := newRecSink()
	s1 := mustOpen(t, h.c, rec, getReq("/1"), true)
	s2 := mustOpen(t, h.c, rec, getReq("/2"), true)
	s3 := mustOpen(t, h.c, rec, getReq("/3"), true)
	s4 := mustOpen(t, h.c, rec, nil, false) // head not sent yet
	h.frames()
	_ = h.p.fr.WriteGoAway(3, http2.ErrCodeNo, []byte("bye"))
	h.mustFeed()
	for _, id := range []protocol.StreamID{s3, s4} {
		if err := rec.resets[id]; !errors.Is(err, protocol.ErrRefusedStream) || !errors.Is(err, ErrGoAway) {
			t.Fatalf("stream %d: %v", id, err)
		}
	}
	if _, ok := rec.resets[s1]; ok {
		t.Fatal("stream 1 reset")
	}
	if h.c.Reusable() {
		t.Fatal("reusable after GOAWAY")
	}
	if _, err := h.c.NewStream(rec); !errors.Is(err, ErrNotReusable) {
		t.Fatalf("NewStream after GOAWAY: %v", err)
	}
	// Streams below the last id complete.
	h.p.headers(1, true, ":status", "200")
	h.p.headers(3, true, ":status", "200")
	h.mustFeed()
	if !rec.ended[s1] || !rec.ended[s2] || h.c.ActiveStreams() != 0 {
		t.Fatalf("events %q active %d", rec.events, h.c.ActiveStreams())
	}
	rec.release()
}

func TestClientResets(t *testing.T) {
	h := newClientHarness(t, Config{})
	rec := newRecSink()
	a := mustOpen(t, h.c, rec, getReq("/a"), false)
	b := mustOpen(t, h.c, rec, getReq("/b"), false)
	_ = h.c.Flush() // heads of streams with a body are held until flushed
	if got := h.frames(); len(got) != 2 {
		t.Fatalf("frames %q", got)
	}
	_ = h.p.fr.WriteRSTStream(1, http2.ErrCodeRefusedStream)
	h.mustFeed()
	if err := rec.resets[a]; !errors.Is(err, protocol.ErrRefusedStream) || !errors.Is(err, ErrPeerReset) {
		t.Fatalf("refused: %v", err)
	}
	// A downstream cancellation goes upstream as CANCEL.
	h.c.Reset(b, fmt.Errorf("downstream went away: %w", streamErr(7, http2.ErrCodeCancel, ErrPeerReset)))
	if got := h.frames(); fmt.Sprint(got) != "[RST_STREAM 3 CANCEL]" {
		t.Fatalf("frames %q", got)
	}
	// A response in flight for it is ignored.
	h.p.headers(3, false, ":status", "200")
	h.p.data(3, true, []byte("late"))
	h.mustFeed()
	if h.frames() != nil || rec.headCount() != 0 {
		t.Fatalf("events %q", rec.events)
	}
	// A reset for a stream without a head sent writes nothing.
	c := mustOpen(t, h.c, rec, nil, false)
	h.c.Reset(c, errors.New("gone"))
	if h.frames() != nil || h.c.ActiveStreams() != 0 {
		t.Fatal("reset of an unsent stream")
	}
}

func TestClientMalformedResponses(t *testing.T) {
	cases := []struct {
		name  string
		write func(p *peer)
	}{
		{"missing status", func(p *peer) { p.headers(1, true, "x", "y") }},
		{"bad status", func(p *peer) { p.headers(1, true, ":status", "20") }},
		{"request pseudo", func(p *peer) { p.headers(1, true, ":status", "200", ":path", "/") }},
		{"uppercase", func(p *peer) { p.headers(1, true, ":status", "200", "X-A", "1") }},
		{"connection", func(p *peer) { p.headers(1, true, ":status", "200", "connection", "close") }},
		{"101", func(p *peer) { p.headers(1, false, ":status", "101") }},
		{"interim with end", func(p *peer) { p.headers(1, true, ":status", "100") }},
		{"data before head", func(p *peer) { p.data(1, true, []byte("x")) }},
		{"body longer than content-length", func(p *peer) {
			p.headers(1, false, ":status", "200", "content-length", "2")
			p.data(1, true, []byte("abc"))
		}},
		{"body shorter than content-length", func(p *peer) {
			p.headers(1, false, ":status", "200", "content-length", "4")
			p.data(1, true, []byte("abc"))
		}},
		{"body on 204", func(p *peer) {
			p.headers(1, false, ":status", "204")
			p.data(1, true, []byte("abc"))
		}},
		{"trailers without end", func(p *peer) {
			p.headers(1, false, ":status", "200")
			p.headers(1, false, "x", "y")
		}},
		{"pseudo in trailers", func(p *peer) {
			p.headers(1, false, ":status", "200")
			p.headers(1, true, ":status", "200")
		}},
	}
	for _, tc := range cases {
		h := newClientHarness(t, Config{})
		rec := newRecSink()
		id := mustOpen(t, h.c, rec, getReq("/"), true)
		h.frames()
		tc.write(h.p)
		h.mustFeed()
		if got := h.frames(); fmt.Sprint(got) != "[RST_STREAM 1 PROTOCOL_ERROR]" {
			t.Errorf("%s: frames %q", tc.name, got)
		}
		var se *protocol.StreamError
		if !errors.As(rec.resets[id], &se) || http2.ErrCode(se.Code) != http2.ErrCodeProtocol || rec.ended[id] {
			t.Errorf("%s: reset %v, events %q", tc.name, rec.resets[id], rec.events)
		}
		if h.c.ActiveStreams() != 0 || !h.c.Reusable() {
			t.Errorf("%s: active %d reusable %v", tc.name, h.c.ActiveStreams(), h.c.Reusable())
		}
		rec.release()
	}
}

// TestClientResponseBeforeRequestEnds: a complete response ends the exchange; the
// unfinished request is cancelled so the stream does not linger.
func TestClientResponseBeforeRequestEnds(t *testing.T) {
	h := newClientHarness(t, Config{})
	rec := newRecSink()
	id := mustOpen(t, h.c, rec, protocol.NewHeaderList(":method", "POST", ":scheme", "http", ":path", "/"), false)
	_ = h.c.EncodeData(id, [][]byte{[]byte("part")}, false)
	h.frames()
	h.p.headers(1, true, ":status", "413")
	h.mustFeed()
	if got := h.frames(); fmt.Sprint(got) != "[RST_STREAM 1 CANCEL]" {
		t.Fatalf("frames %q", got)
	}
	if h.c.ActiveStreams() != 0 || !rec.ended[id] {
		t.Fatalf("active %d events %q", h.c.ActiveStreams(), rec.events)
	}
	if err := h.c.EncodeData(id, [][]byte{[]byte("more")}, true); !errors.Is(err, ErrStreamState) {
		t.Fatalf("EncodeData after the exchange: %v", err)
	}
	rec.release()
}

func TestClientEOF(t *testing.T) {
	h := newClientHarness(t, Config{})
	rec := newRecSink()
	id := mustOpen(t, h.c, rec, getReq("/"), true)
	h.c.OnEOF()
	if !errors.Is(rec.resets[id], ErrPeerClosed) || h.c.Reusable() || h.c.ActiveStreams() != 0 {
		t.Fatalf("reset %v reusable %v", rec.resets[id], h.c.Reusable())
	}
}

func TestClientInterimLimit(t *testing.T) {
	h := newClientHarness(t, Config{MaxInterimResponses: 3})
	rec := newRecSink()
	id := mustOpen(t, h.c, rec, getReq("/"), true)
	h.frames()
	for i := 0; i < 4; i++ {
		h.p.headers(1, false, ":status", "103", "link", "</a.css>")
	}
	h.mustFeed()
	if got := h.frames(); fmt.Sprint(got) != "[RST_STREAM 1 PROTOCOL_ERROR]" || !errors.Is(rec.resets[id], ErrFlood) {
		t.Fatalf("frames %q reset %v", got, rec.resets[id])
	}
}

func TestClientRejectsPushAndServerStreams(t *testing.T) {
	for name, write := range map[string]func(p *peer){
		"push promise": func(p *peer) {
			_ = p.fr.WritePushPromise(http2.PushPromiseParam{StreamID: 1, PromiseID: 2, BlockFragment: p.block(get("/")...), EndHeaders: true})
		},
		"even stream": func(p *peer) { p.headers(2, true, ":status", "200") },
		"idle stream": func(p *peer) { p.headers(5, true, ":status", "200") },
		"enable push": func(p *peer) { _ = p.fr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 1}) },
	} {
		h := newClientHarness(t, Config{})
		mustOpen(t, h.c, newRecSink(), getReq("/"), true)
		h.frames()
		write(h.p)
		err := h.feed()
		if connCode(t, err) != http2.ErrCodeProtocol {
			t.Errorf("%s: %v", name, err)
		}
		if got := h.frames(); len(got) != 1 || !strings.HasPrefix(got[0], "GOAWAY 0 PROTOCOL_ERROR") {
			t.Errorf("%s: frames %q", name, got)
		}
	}
}

// fakeQueue is a driver's protocol.FlushQueue: it takes codecs while open is set.
type fakeQueue struct {
	open   bool
	queued []protocol.Flusher
}

func (q *fakeQueue) QueueFlush(f protocol.Flusher) bool {
	if q.open {
		q.queued = append(q.queued, f)
	}
	return q.open
}

// With a driver's FlushQueue, complete requests, resets and small bodies encoded outside
// the codec's own Decode wait in the queue (once) and leave in one write when the driver
// flushes; with the queue closed they are written at once; a body slice too large to copy is
// never left waiting (it belongs to the caller).
func TestClientFlushQueueBatches(t *testing.T) {
	h := newClientHarness(t, Config{})
	q := &fakeQueue{open: true}
	h.c.SetFlushQueue(q)
	_ = h.c.Flush() // the driver flushes
	rec := newRecSink()
	writes := h.conn.writes
	a := mustOpen(t, h.c, rec, getReq("/a"), true)
	b := mustOpen(t, h.c, rec, getReq("/b"), true)
	c := mustOpen(t, h.c, rec, postReq("/c"), false)
	if err := h.c.EncodeData(c, [][]byte{[]byte("small")}, true); err != nil {
		t.Fatal(err)
	}
	h.c.Reset(a, errors.New("client went away"))
	if h.conn.writes != writes || len(q.queued) != 1 {
		t.Fatalf("%d writes and %d queue entries before the driver's flush, want 0 and 1", h.conn.writes-writes, len(q.queued))
	}
	for _, f := range q.queued {
		_ = f.Flush()
	}
	if h.conn.writes != writes+1 {
		t.Fatalf("%d writes for the batch, want 1", h.conn.writes-writes)
	}
	want := "[HEADERS 1 end :method=GET :scheme=http :authority=up.local :path=/a " +
		"HEADERS 3 end :method=GET :scheme=http :authority=up.local :path=/b " +
		"HEADERS 5 :method=POST :scheme=http :authority=up.local :path=/c DATA 5 5 end RST_STREAM 1 CANCEL]"
	if got := fmt.Sprint(h.frames()); got != want {
		t.Fatalf("frames\n got %s\nwant %s", got, want)
	}
	// A large body slice is referenced, so it leaves before EncodeData returns.
	q.queued = nil
	d := mustOpen(t, h.c, rec, postReq("/d"), false)
	if err := h.c.EncodeData(d, [][]byte{bytes.Repeat([]byte("x"), smallBody+1)}, true); err != nil {
		t.Fatal(err)
	}
	if len(h.frames()) != 2 {
		t.Fatal("a referenced body waited for the driver's flush")
	}
	// Outside the driver's callbacks the queue refuses and the codec writes at once.
	q.open = false
	h.c.Reset(b, errors.New("timeout"))
	if got := fmt.Sprint(h.frames()); got != "[RST_STREAM 3 CANCEL]" {
		t.Fatalf("frames %s", got)
	}
}
