package http2

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/strait-proxy/strait/protocol"
)

// pair connects a client codec and a server codec back to back over fake connections.
type pair struct {
	t              *testing.T
	cconn, sconn   *fakeConn
	c              *clientCodec
	s              *serverCodec
	cpipe, spipe   *pipe
	crec, srec     *recSink
	maxCQ, maxSQ   int
	clientReadStop bool // the client does not read what the server writes
}

func newPair(t *testing.T, ccfg, scfg Config) *pair {
	p := &pair{t: t, cconn: &fakeConn{}, sconn: &fakeConn{}, crec: newRecSink(), srec: newRecSink()}
	p.c = NewCodec(ccfg).NewClient(p.cconn).(*clientCodec)
	p.s = NewCodec(scfg).NewServer(p.sconn, p.srec).(*serverCodec)
	_ = p.c.Flush()
	_ = p.s.Flush()
	p.cpipe = &pipe{t: t, conn: p.cconn, codec: p.c}
	p.spipe = &pipe{t: t, conn: p.sconn, codec: p.s}
	p.run()
	return p
}

// run moves bytes both ways until nothing moves.
func (p *pair) run() {
	for i := 0; i < 10000; i++ {
		cb := append([]byte(nil), p.cconn.out.Bytes()...)
		p.cconn.out.Reset()
		if len(cb) > 0 {
			if err := p.spipe.feed(cb); err != nil {
				p.t.Fatalf("server Decode: %v", err)
			}
		}
		var sb []byte
		if !p.clientReadStop {
			sb = append([]byte(nil), p.sconn.out.Bytes()...)
			p.sconn.out.Reset()
			if len(sb) > 0 {
				if err := p.cpipe.feed(sb); err != nil {
					p.t.Fatalf("client Decode: %v", err)
				}
			}
		}
		p.maxCQ, p.maxSQ = max(p.maxCQ, p.c.queued), max(p.maxSQ, p.s.queued)
		if len(cb) == 0 && len(sb) == 0 {
			return
		}
	}
	p.t.Fatal("the pair does not settle")
}

// TestPairExchanges: our client against our server: heads, bodies larger than every window
// in both directions, trailers, resets both ways, and GOAWAY.
func TestPairExchanges(t *testing.T) {
	p := newPair(t, Config{}, Config{})
	// The server side is a FlowSink: it returns request bytes as it takes them, and writes
	// the response while the stream is not congested, resuming on OnStreamWritable, as a
	// stream manager does.
	fs := &flowSink{recSink: p.srec}
	p.s.srvSink = fs
	p.srec.onData = func(id protocol.StreamID, n int) { p.s.Consume(id, n) }
	up := bytes.Repeat([]byte("u"), 3<<20)
	down := bytes.Repeat([]byte("d"), 5<<20)
	off, trailers := 0, false
	write := func(id protocol.StreamID) {
		for off < len(down) && !p.s.StreamCongested(id) {
			n := min(256<<10, len(down)-off)
			if err := p.s.EncodeData(id, [][]byte{down[off : off+n]}, false); err != nil {
				t.Fatal(err)
			}
			off += n
		}
		if off == len(down) && !trailers {
			trailers = true
			_ = p.s.EncodeTrailers(id, protocol.NewHeaderList("grpc-status", "0"))
		}
	}
	fs.onWrite = write
	p.srec.onEnd = func(id protocol.StreamID) {
		if p.srec.body(id) != string(up) {
			t.Errorf("server got %d bytes", p.srec.bodies[id].Len())
		}
		_ = p.s.EncodeHeaders(id, protocol.NewHeaderList(":status", "200", "content-type", "application/grpc"), false)
		write(id)
	}
	id := mustOpen(t, p.c, p.crec, protocol.NewHeaderList(":method", "POST", ":scheme", "http", ":authority", "svc",
		":path", "/pkg.Svc/Bulk", "content-type", "application/grpc", "te", "trailers"), false)
	// The request body goes in 256 KiB writes; what the windows do not allow waits in the
	// client's queue (bounded: the writes here ignore StreamCongested, as a test may).
	for off := 0; off < len(up); off += 256 << 10 {
		if err := p.c.EncodeData(id, [][]byte{up[off : off+256<<10]}, false); err != nil {
			t.Fatalf("at %d: %v", off, err)
		}
		p.run()
	}
	if err := p.c.EncodeTrailers(id, protocol.NewHeaderList("x-sum", "3145728")); err != nil {
		t.Fatal(err)
	}
	p.run()
	if p.srec.trailers[1] != "x-sum=3145728" {
		t.Fatalf("server events %q", p.srec.events)
	}
	if p.crec.body(id) != string(down) || p.crec.trailers[id] != "grpc-status=0" {
		t.Fatalf("client got %d bytes, trailers %q", p.crec.bodies[id].Len(), p.crec.trailers[id])
	}
	if p.c.ActiveStreams() != 0 || len(p.s.streams) != 0 || p.c.queued != 0 || p.s.queued != 0 {
		t.Fatalf("left: client %d server %d", p.c.ActiveStreams(), len(p.s.streams))
	}
	t.Logf("max queued: client %d, server %d", p.maxCQ, p.maxSQ)

	if p.maxSQ > 256<<10+65536 {
		t.Fatalf("server queued up to %d bytes", p.maxSQ)
	}

	// Resets both ways.
	p.srec.onEnd = nil
	p.srec.onData = nil
	a := mustOpen(t, p.c, p.crec, protocol.NewHeaderList(":method", "POST", ":scheme", "http", ":path", "/a"), false)
	b := mustOpen(t, p.c, p.crec, protocol.NewHeaderList(":method", "POST", ":scheme", "http", ":path", "/b"), false)
	_ = p.c.Flush()
	p.run()
	p.c.Reset(a, streamErr(0, 0x8, ErrPeerReset)) // CANCEL
	p.s.Reset(5, errors.New("upstream failed"))
	p.run()
	var se *protocol.StreamError
	if !errors.As(p.srec.resets[3], &se) || se.Code != 0x8 {
		t.Fatalf("server saw %v", p.srec.resets[3])
	}
	if !errors.As(p.crec.resets[b], &se) || se.Code != 0x2 {
		t.Fatalf("client saw %v", p.crec.resets[b])
	}
	// GOAWAY: the connection drains; a new stream is refused before it is sent.
	c := mustOpen(t, p.c, p.crec, protocol.NewHeaderList(":method", "GET", ":scheme", "http", ":path", "/c"), true)
	p.run()
	p.s.Drain()
	p.run()
	if p.c.Reusable() {
		t.Fatal("client reusable after GOAWAY")
	}
	if _, err := p.c.NewStream(p.crec); !errors.Is(err, ErrNotReusable) {
		t.Fatalf("NewStream: %v", err)
	}
	respond(t, p.s, 7, "200", "bye")
	p.run()
	if p.crec.body(c) != "bye" || !p.sconn.writeClosed {
		t.Fatalf("body %q half-closed %v", p.crec.body(c), p.sconn.writeClosed)
	}
	p.crec.release()
	p.srec.release()
}

// TestPairManyStreams: 1,000 streams in waves of the server's concurrency limit, each with
// its own head and body, answered out of order.
func TestPairManyStreams(t *testing.T) {
	p := newPair(t, Config{}, Config{MaxConcurrentStreams: 50})
	if p.c.MaxStreams() != 50 {
		t.Fatalf("MaxStreams %d", p.c.MaxStreams())
	}
	var ids []protocol.StreamID
	p.srec.onEnd = func(id protocol.StreamID) { ids = append(ids, id) }
	for wave := 0; wave < 20; wave++ {
		var handles []protocol.StreamID
		for i := 0; i < 50; i++ {
			n := wave*50 + i
			h := mustOpen(t, p.c, p.crec, protocol.NewHeaderList(":method", "POST", ":scheme", "http", ":path", fmt.Sprintf("/%d", n)), false)
			if err := p.c.EncodeData(h, [][]byte{[]byte(strings.Repeat("x", n))}, true); err != nil {
				t.Fatal(err)
			}
			handles = append(handles, h)
		}
		if _, err := p.c.NewStream(p.crec); !errors.Is(err, ErrStreamLimit) {
			t.Fatalf("51st stream: %v", err)
		}
		p.run()
		for i := len(ids) - 1; i >= 0; i-- { // answer in reverse order
			path, _ := p.srec.heads[ids[i]].Get(protocol.Path)
			respond(t, p.s, ids[i], "200", path)
		}
		ids = ids[:0]
		p.run()
		for i, h := range handles {
			if got, want := p.crec.body(h), fmt.Sprintf("/%d", wave*50+i); got != want {
				t.Fatalf("stream %d: %q want %q", h, got, want)
			}
		}
		if p.c.ActiveStreams() != 0 || len(p.s.streams) != 0 {
			t.Fatalf("wave %d: client %d server %d", wave, p.c.ActiveStreams(), len(p.s.streams))
		}
		p.srec.release()
		p.crec.release()
	}
}
