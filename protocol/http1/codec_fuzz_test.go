package http1

import (
	"errors"
	"strings"
	"testing"

	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/reactor"
)

// Invariants of the codec fuzz targets:
//   - no panic, whatever the bytes and however they are split into reads;
//   - consumed bytes are accounted: a Decode never consumes more than it was given, every
//     OnData offers n <= in.Len() bytes and exactly n are consumed;
//   - an error wraps protocol.ErrConnection, and after it nothing more is decoded (no
//     OnHeaders for bytes after an error);
//   - stream ids go 1, 2, 3... and a stream's body never continues after its end.

// fuzzSink wraps recSink with the invariant checks.
type fuzzSink struct {
	*recSink
	t       *testing.T
	failed  bool // the codec returned an error
	lastID  protocol.StreamID
	answer  func(id protocol.StreamID)
	onReset func(id protocol.StreamID)
}

func (f *fuzzSink) OnHeaders(id protocol.StreamID, h protocol.Headers, end bool) {
	if f.failed {
		f.t.Fatalf("OnHeaders(%d) after the codec failed", id)
	}
	if id != f.lastID+1 {
		f.t.Fatalf("stream id %d after %d", id, f.lastID)
	}
	f.lastID = id
	// Reading the head must work whatever it holds.
	for _, n := range []string{protocol.Method, protocol.Path, protocol.Authority, protocol.Status, "host", "content-length"} {
		h.Get(n)
	}
	f.recSink.OnHeaders(id, h, end)
	if end && f.answer != nil {
		f.answer(id)
	}
}

func (f *fuzzSink) OnData(id protocol.StreamID, in reactor.View, n int, end bool) {
	if f.failed {
		f.t.Fatalf("OnData(%d) after the codec failed", id)
	}
	if n < 0 || n > in.Len() {
		f.t.Fatalf("OnData n=%d with %d bytes", n, in.Len())
	}
	if f.ended[id] {
		f.t.Fatalf("OnData(%d) after its end", id)
	}
	f.recSink.OnData(id, in, n, end)
	if end && f.answer != nil {
		f.answer(id)
	}
}

func (f *fuzzSink) OnTrailers(id protocol.StreamID, t protocol.Headers) {
	if f.ended[id] {
		f.t.Fatalf("OnTrailers(%d) after its end", id)
	}
	f.recSink.OnTrailers(id, t)
	if f.answer != nil {
		f.answer(id)
	}
}

// feedFuzz delivers data in reads of step bytes (0: whole) and checks the accounting.
func feedFuzz(t *testing.T, p *pipe, sink *fuzzSink, data []byte, step int) {
	if step <= 0 {
		step = len(data) + 1
	}
	step = max(step, len(data)/256) // bound the reads of large inputs
	fed := 0
	for off := 0; off < len(data); off += step {
		chunk := data[off:min(off+step, len(data))]
		fed += len(chunk)
		before := len(p.pending) + len(chunk)
		err := p.feed(chunk)
		if len(p.pending) > before {
			t.Fatalf("pending grew from %d to %d", before, len(p.pending))
		}
		if err != nil {
			if !errors.Is(err, protocol.ErrConnection) {
				t.Fatalf("error %v does not wrap ErrConnection", err)
			}
			sink.failed = true
			heads := sink.headCount()
			if err2 := p.codec.Decode(&fakeView{buf: []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")}); err2 == nil {
				t.Fatal("Decode after an error succeeded")
			}
			if sink.headCount() != heads {
				t.Fatal("a head was decoded after an error")
			}
			return
		}
		p.conn.runExec()
	}
}

func FuzzServerCodec(f *testing.F) {
	for _, c := range hostileRequests {
		if len(c.in) < 2048 {
			f.Add([]byte(c.in+hostileRequestTail), uint8(0))
		}
	}
	for _, c := range validRequests {
		f.Add([]byte(c.in), uint8(3))
	}
	for _, c := range hostileChunked {
		if len(c.in) < 2048 {
			f.Add([]byte("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"+c.in+hostileRequestTail), uint8(5))
		}
	}
	f.Add([]byte(typicalRequest+typicalRequest), uint8(1))
	f.Add([]byte("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), uint8(0))
	f.Add([]byte("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabcHEAD / HTTP/1.1\r\nHost: a\r\n\r\n"), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		sink := &fuzzSink{recSink: newRecSink(), t: t}
		defer sink.release()
		conn := &fakeConn{}
		s := newServer(conn, sink, Limits{}.WithDefaults())
		p := &pipe{t: t, conn: conn, codec: s, copyPeek: step%2 == 1}
		sink.answer = func(id protocol.StreamID) {
			// Answer once the request ended: a chunked body for odd ids, a sized one for even.
			if conn.closed || s.wstate != respNone || id != s.id {
				return
			}
			var err error
			if id%2 == 1 {
				if err = s.EncodeHeaders(id, protocol.NewHeaderList(protocol.Status, "200"), false); err == nil {
					err = s.EncodeData(id, [][]byte{[]byte("body")}, true)
				}
			} else {
				err = s.EncodeHeaders(id, protocol.NewHeaderList(protocol.Status, "204"), true)
			}
			if err != nil && !conn.closed {
				t.Fatalf("answer %d: %v", id, err)
			}
		}
		feedFuzz(t, p, sink, data, int(step))
		if err := p.pump(); err != nil && !errors.Is(err, protocol.ErrConnection) {
			t.Fatal(err)
		}
		out := conn.out.String()
		if sink.failed && sink.lastID == 0 && !strings.HasPrefix(out, "HTTP/1.1 4") && !strings.HasPrefix(out, "HTTP/1.1 5") {
			t.Fatalf("rejected input answered with %q", out)
		}
	})
}

func FuzzClientCodec(f *testing.F) {
	for _, c := range hostileResponses {
		if len(c.in) < 2048 {
			f.Add([]byte(c.in), uint8(0), false)
		}
	}
	for _, c := range responseCases {
		f.Add([]byte(c.in), uint8(2), c.method == "HEAD")
	}
	for _, c := range hostileChunked {
		if len(c.in) < 2048 {
			f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"+c.in), uint8(3), false)
		}
	}
	f.Add([]byte(typicalResponse+strings.Repeat("x", 1234)+"HTTP/1.1 204 No Content\r\n\r\n"), uint8(7), false)
	f.Add([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\nraw"), uint8(0), false)
	f.Fuzz(func(t *testing.T, data []byte, step uint8, head bool) {
		sink := &fuzzSink{recSink: newRecSink(), t: t}
		defer sink.release()
		conn := &fakeConn{}
		c := newClient(conn, Limits{}.WithDefaults())
		p := &pipe{t: t, conn: conn, codec: c, copyPeek: step%2 == 1}
		method := "GET"
		if head {
			method = "HEAD"
		}
		open := func() {
			if _, err := c.NewStream(sink); err != nil {
				return
			}
			if err := c.EncodeHeaders(c.id, protocol.NewHeaderList(protocol.Method, method, protocol.Path, "/", protocol.Authority, "a"), true); err != nil {
				t.Fatal(err)
			}
		}
		// The next request goes out as soon as the previous exchange ended.
		sink.answer = func(protocol.StreamID) {
			if c.ActiveStreams() == 0 && c.Reusable() {
				open()
			}
		}
		open()
		feedFuzz(t, p, sink, data, int(step))
		if n := c.ActiveStreams(); n < 0 || n > 1 {
			t.Fatalf("ActiveStreams %d", n)
		}
		if !sink.failed {
			c.OnEOF()
			if c.Reusable() {
				t.Fatal("reusable after EOF")
			}
		}
	})
}
