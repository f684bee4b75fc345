package http2

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/reactor"
)

// Invariants of the codec fuzz targets, whatever the bytes and however they are split:
//   - no panic;
//   - every OnData offers n <= in.Len() bytes and the codec accounts for exactly n;
//   - a Decode error is a *ConnError wrapping protocol.ErrConnection, and nothing is
//     reported to a sink after it;
//   - no stream reports anything after its end or reset;
//   - everything the codec writes is a valid HTTP/2 frame sequence for x/net's Framer and
//     hpack decoder (so HPACK state and framing stay right whatever the peer did);
//   - queued bytes stay within the configured bounds.

type fuzzSink struct {
	t      *testing.T
	failed bool
	ended  map[protocol.StreamID]bool
	answer func(id protocol.StreamID, end bool)
	flow   StreamFlow
}

func (f *fuzzSink) check(id protocol.StreamID, what string) {
	if f.failed {
		f.t.Fatalf("%s(%d) after a connection error", what, id)
	}
	if f.ended[id] {
		f.t.Fatalf("%s(%d) after the stream ended", what, id)
	}
}

func (f *fuzzSink) OnHeaders(id protocol.StreamID, h protocol.Headers, end bool) {
	f.check(id, "OnHeaders")
	for _, n := range []string{protocol.Method, protocol.Path, protocol.Authority, protocol.Status, "host", "content-length"} {
		h.Get(n)
	}
	h.Range(func(string, string) bool { return true })
	h.Release()
	if end {
		f.ended[id] = true
	}
	if f.answer != nil {
		f.answer(id, end)
	}
}

func (f *fuzzSink) OnData(id protocol.StreamID, in reactor.View, n int, end bool) {
	f.check(id, "OnData")
	if n < 0 || n > in.Len() {
		f.t.Fatalf("OnData n=%d with %d bytes", n, in.Len())
	}
	if n > 0 {
		_ = in.Peek(n)
		in.Skip(n)
		if f.flow != nil {
			f.flow.Consume(id, n)
		}
	}
	if end {
		f.ended[id] = true
		if f.answer != nil {
			f.answer(id, true)
		}
	}
}

func (f *fuzzSink) OnTrailers(id protocol.StreamID, t protocol.Headers) {
	f.check(id, "OnTrailers")
	t.Release()
	f.ended[id] = true
	if f.answer != nil {
		f.answer(id, true)
	}
}

func (f *fuzzSink) OnReset(id protocol.StreamID, err error) {
	f.ended[id] = true
}

func (f *fuzzSink) OnStreamWritable(protocol.StreamID) {}

// fuzzFeed delivers data in reads whose sizes come from the data itself, checks the error
// invariants, and returns the number of bytes consumed.
func fuzzFeed(t *testing.T, p *pipe, sink *fuzzSink, data []byte, step int) {
	if step <= 0 {
		step = len(data) + 1
	}
	for i := 0; i < len(data); i += step {
		err := p.feed(data[i:min(i+step, len(data))])
		if err != nil {
			var ce *ConnError
			if !errors.As(err, &ce) || !errors.Is(err, protocol.ErrConnection) {
				t.Fatalf("error %v (%T) is not a connection error", err, err)
			}
			sink.failed = true
			// Later bytes are dropped, nothing reported.
			_ = p.codec.Decode(&fakeView{buf: []byte("more bytes")})
			return
		}
	}
}

// checkOutput parses everything a codec wrote with x/net's Framer.
func checkOutput(t *testing.T, out []byte, client bool) {
	if client {
		if !bytes.HasPrefix(out, []byte(preface)) {
			t.Fatal("client output without the preface")
		}
		out = out[len(preface):]
	}
	fr := http2.NewFramer(nil, bytes.NewReader(out))
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	fr.SetMaxReadFrameSize(maxFrameSize)
	for {
		_, err := fr.ReadFrame()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("the codec wrote an invalid frame sequence: %v", err)
		}
	}
}

// serverSeeds are byte streams a client could send: valid exchanges and known-bad ones.
func serverSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	add := func(write func(p *peer)) {
		p := newPeer(t)
		p.wbuf.WriteString(preface)
		_ = p.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 100})
		write(p)
		seeds = append(seeds, p.take())
	}
	add(func(p *peer) { p.headers(1, true, get("/")...) })
	add(func(p *peer) {
		p.headers(1, false, post("/", "content-length", "3")...)
		p.data(1, false, []byte("ab"))
		_ = p.fr.WriteDataPadded(1, true, []byte("c"), []byte{0, 0})
		p.headers(3, true, get("/again")...)
	})
	add(func(p *peer) {
		b := p.block(append(get("/c"), "x-long", "0123456789abcdefghijklmnopqrstuvwxyz")...)
		_ = p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b[:7]})
		_ = p.fr.WriteContinuation(1, false, b[7:20])
		_ = p.fr.WriteContinuation(1, true, b[20:])
	})
	add(func(p *peer) {
		p.headers(1, false, post("/grpc", "content-type", "application/grpc", "te", "trailers")...)
		p.data(1, false, []byte("\x00\x00\x00\x00\x01x"))
		p.headers(1, true, "x-trailer", "1")
		_ = p.fr.WritePing(false, [8]byte{1})
		_ = p.fr.WriteWindowUpdate(0, 1000)
		_ = p.fr.WriteWindowUpdate(1, 1000)
		_ = p.fr.WritePriority(3, http2.PriorityParam{StreamDep: 1, Weight: 5})
	})
	add(func(p *peer) {
		p.headers(1, false, post("/")...)
		_ = p.fr.WriteRSTStream(1, http2.ErrCodeCancel)
		p.data(1, true, []byte("late"))
		_ = p.fr.WriteGoAway(1, http2.ErrCodeNo, nil)
	})
	add(func(p *peer) { p.headers(1, true, append(get("/"), "X-Upper", "1")...) })
	add(func(p *peer) { p.headers(1, true, ":method", "GET", "accept", "*/*", ":path", "/") })
	add(func(p *peer) {
		p.headers(1, true, append(get("/"), "cookie", "a=1", "cookie", "b=2", "host", "example.com")...)
		p.headers(3, true, get("/")...) // indexed from the dynamic table
		_ = p.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20},
			http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1 << 15}, http2.Setting{ID: http2.SettingHeaderTableSize, Val: 0})
		p.headers(5, true, get("/x")...)
	})
	add(func(p *peer) {
		p.headers(1, false, post("/")...)
		p.data(1, false, nil)
		p.data(1, false, nil)
	})
	add(func(p *peer) {
		p.wbuf.Write([]byte{0, 0, 4, 0x8, 0, 0, 0, 0, 0, 0, 0, 0, 0}) // WINDOW_UPDATE 0 by 0
	})
	return seeds
}

func FuzzServerCodec(f *testing.F) {
	for _, s := range serverSeeds(f) {
		f.Add(s, uint8(0))
		f.Add(s, uint8(7))
	}
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		conn := &fakeConn{}
		cfg := Config{MaxStreamSendBuffer: 4096, MaxConnSendBuffer: 8192, MaxHeaderListSize: 4096}
		sink := &fuzzSink{t: t, ended: map[protocol.StreamID]bool{}}
		s := NewCodec(cfg).NewServer(conn, sink).(*serverCodec)
		body := bytes.Repeat([]byte("b"), 300)
		sink.answer = func(id protocol.StreamID, end bool) {
			if !end {
				return
			}
			if s.EncodeHeaders(id, protocol.NewHeaderList(":status", "200", "X-A", "b"), false) != nil {
				return
			}
			if s.EncodeData(id, [][]byte{body}, false) != nil {
				return
			}
			_ = s.EncodeTrailers(id, protocol.NewHeaderList("grpc-status", "0"))
		}
		if step%2 == 1 {
			sink.flow = s
		}
		p := &pipe{t: t, conn: conn, codec: s, copyPeek: step%3 == 0}
		fuzzFeed(t, p, sink, data, int(step))
		if s.queued > cfg.MaxConnSendBuffer {
			t.Fatalf("queued %d", s.queued)
		}
		s.OnEOF()
		checkOutput(t, conn.out.Bytes(), false)
	})
}

// clientSeeds are byte streams a server could send to a client with streams 1, 3 and 5
// open.
func clientSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	add := func(write func(p *peer)) {
		p := newPeer(t)
		_ = p.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 10})
		_ = p.fr.WriteSettingsAck()
		write(p)
		seeds = append(seeds, p.take())
	}
	add(func(p *peer) {
		p.headers(1, false, ":status", "200", "content-length", "2")
		p.data(1, true, []byte("ok"))
	})
	add(func(p *peer) {
		p.headers(3, false, ":status", "100")
		p.headers(3, false, ":status", "200", "content-type", "application/grpc")
		p.data(3, false, []byte("\x00\x00\x00\x00\x00"))
		p.headers(3, true, "grpc-status", "0")
		p.headers(1, true, ":status", "204")
	})
	add(func(p *peer) {
		_ = p.fr.WriteGoAway(1, http2.ErrCodeNo, []byte("drain"))
		p.headers(1, true, ":status", "200")
	})
	add(func(p *peer) {
		_ = p.fr.WriteRSTStream(5, http2.ErrCodeRefusedStream)
		_ = p.fr.WriteWindowUpdate(0, 100)
		_ = p.fr.WriteWindowUpdate(1, 100)
		_ = p.fr.WritePing(false, [8]byte{})
	})
	add(func(p *peer) { p.headers(1, true, ":status", "200", "Bad", "x") })
	add(func(p *peer) { p.data(1, true, []byte("no head")) })
	add(func(p *peer) {
		b := p.block(":status", "200", "x-long", "0123456789abcdefghijklmnopqrstuvwxyz")
		_ = p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, BlockFragment: b[:4], EndStream: true})
		_ = p.fr.WriteContinuation(5, true, b[4:])
	})
	return seeds
}

func FuzzClientCodec(f *testing.F) {
	for _, s := range clientSeeds(f) {
		f.Add(s, uint8(0))
		f.Add(s, uint8(5))
	}
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		conn := &fakeConn{}
		cfg := Config{MaxStreamSendBuffer: 4096, MaxConnSendBuffer: 8192, MaxHeaderListSize: 4096}
		c := NewCodec(cfg).NewClient(conn).(*clientCodec)
		sink := &fuzzSink{t: t, ended: map[protocol.StreamID]bool{}}
		if step%2 == 1 {
			sink.flow = c
		}
		body := bytes.Repeat([]byte("q"), 70000)
		for i := 0; i < 3; i++ {
			id, err := c.NewStream(sink)
			if err != nil {
				t.Fatal(err)
			}
			req := protocol.NewHeaderList(":method", "POST", ":scheme", "http", ":authority", "a", ":path", "/", "te", "trailers")
			if err := c.EncodeHeaders(id, req, false); err != nil {
				t.Fatal(err)
			}
			if i == 1 {
				_ = c.EncodeData(id, [][]byte{body[:5000]}, false)
				_ = c.EncodeTrailers(id, protocol.NewHeaderList("x-t", "1"))
			} else {
				_ = c.EncodeData(id, [][]byte{[]byte("x")}, true)
			}
		}
		p := &pipe{t: t, conn: conn, codec: c, copyPeek: step%3 == 0}
		fuzzFeed(t, p, sink, data, int(step))
		if c.queued > cfg.MaxConnSendBuffer {
			t.Fatalf("queued %d", c.queued)
		}
		if c.ActiveStreams() < 0 || c.ActiveStreams() > 3 {
			t.Fatalf("active %d", c.ActiveStreams())
		}
		c.OnEOF()
		if c.ActiveStreams() != 0 || c.Reusable() {
			t.Fatalf("after EOF: active %d reusable %v", c.ActiveStreams(), c.Reusable())
		}
		checkOutput(t, conn.out.Bytes(), true)
	})
}
