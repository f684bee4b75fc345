package bolt

import (
	"testing"

	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/reactor"
)

// discardSink releases heads and skips content, like a stream manager that forwards them.
type discardSink struct{ heads, bytes int }

func (s *discardSink) OnHeaders(_ protocol.StreamID, h protocol.Headers, _ bool) {
	s.heads++
	h.Release()
}
func (s *discardSink) OnData(_ protocol.StreamID, in reactor.View, n int, _ bool) {
	s.bytes += n
	in.Skip(n)
}
func (s *discardSink) OnTrailers(_ protocol.StreamID, t protocol.Headers) { t.Release() }
func (s *discardSink) OnReset(protocol.StreamID, error)                   {}

// benchFrames returns a typical SOFARPC request (SofaRequest class, five header pairs, 1 KiB
// of content) and its response (SofaResponse, 1 KiB).
func benchFrames(b *testing.B) (req, resp []byte) {
	kv := []string{
		"sofa_head_target_service", "com.alipay.test.EchoService:1.0",
		"sofa_head_method_name", "echo",
		"sofa_head_target_app", "echo-server",
		"rpc_trace_context.sofaTraceId", "0a0fe8b81690000000001000112345",
		"rpc_trace_context.sofaRpcId", "0.1",
	}
	content := string(make([]byte, 1024))
	req = request(1, "com.alipay.sofa.rpc.core.request.SofaRequest", content, kv...).bytes(b)
	resp = response(1, StatusSuccess, "com.alipay.sofa.rpc.core.response.SofaResponse", content).bytes(b)
	return req, resp
}

// BenchmarkServerCodec is one request decoded by the downstream codec (head reported, content
// offered) and its Bolt response encoded back (head rewritten, content in the same writev).
func BenchmarkServerCodec(b *testing.B) {
	req, resp := benchFrames(b)
	var rf Frame
	rn, rcl, err := DecodeHead(resp, &rf, Limits{})
	if err != nil {
		b.Fatal(err)
	}
	content := [][]byte{resp[rn:]}
	conn := &fakeConn{discard: true}
	sink := &discardSink{}
	s := newServerCodec(conn, sink, Limits{}.WithDefaults(), CodecOptions{}.WithDefaults())
	v := &fakeView{}
	b.ReportAllocs()
	b.SetBytes(int64(len(req) + len(resp)))
	for b.Loop() {
		v.b = req
		if err := s.Decode(v); err != nil {
			b.Fatal(err)
		}
		h := newHeaders(resp[:rn], &rf, rcl) // what the client codec hands over
		if err := s.EncodeHeaders(1, h, false); err != nil {
			b.Fatal(err)
		}
		h.Release()
		if err := s.EncodeData(1, content, true); err != nil {
			b.Fatal(err)
		}
	}
	if conn.ops != b.N || sink.heads != b.N {
		b.Fatalf("%d writes, %d heads for %d ops", conn.ops, sink.heads, b.N)
	}
}

// BenchmarkClientCodec is one request encoded by the upstream codec (a Bolt head rewritten with
// a fresh id, content in the same writev) and its response decoded.
func BenchmarkClientCodec(b *testing.B) {
	req, resp := benchFrames(b)
	reqH := headersOf(b, req)
	defer reqH.Release()
	content := [][]byte{req[len(req)-1024:]}
	conn := &fakeConn{discard: true}
	sink := &discardSink{}
	c := newClientCodec(conn, Limits{}.WithDefaults(), CodecOptions{}.WithDefaults())
	v := &fakeView{}
	b.ReportAllocs()
	b.SetBytes(int64(len(req) + len(resp)))
	for b.Loop() {
		id, err := c.NewStream(sink)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.EncodeHeaders(id, reqH, false); err != nil {
			b.Fatal(err)
		}
		if err := c.EncodeData(id, content, true); err != nil {
			b.Fatal(err)
		}
		_ = SetRequestID(resp, uint32(id))
		v.b = resp
		if err := c.Decode(v); err != nil {
			b.Fatal(err)
		}
	}
	if c.ActiveStreams() != 0 || sink.heads != b.N {
		b.Fatalf("%d active, %d heads", c.ActiveStreams(), sink.heads)
	}
}

// proxy is the stream manager's part in a Bolt to Bolt proxy, reduced to forwarding: request
// heads and content from the server codec to the client codec, responses back.
type proxy struct {
	srv   *serverCodec
	cli   *clientCodec
	down  protocol.StreamID // the downstream id of the stream in flight
	up    protocol.StreamID
	vec   [1][]byte
	resp  responseSide
	fails int
}

type responseSide struct{ p *proxy }

func (p *proxy) OnHeaders(id protocol.StreamID, h protocol.Headers, end bool) {
	p.down = id
	up, err := p.cli.NewStream(&p.resp)
	if err != nil {
		p.fails++
		h.Release()
		return
	}
	p.up = up
	if p.cli.EncodeHeaders(up, h, end) != nil {
		p.fails++
	}
	h.Release() // the stream manager keeps it until the stream ends; the codec copied it
}

func (p *proxy) OnData(_ protocol.StreamID, in reactor.View, n int, end bool) {
	p.vec[0] = in.Peek(n)
	if p.cli.EncodeData(p.up, p.vec[:], end) != nil {
		p.fails++
	}
	p.vec[0] = nil
	in.Skip(n)
}

func (p *proxy) OnTrailers(_ protocol.StreamID, t protocol.Headers) { t.Release() }
func (p *proxy) OnReset(protocol.StreamID, error)                   { p.fails++ }

func (r *responseSide) OnHeaders(_ protocol.StreamID, h protocol.Headers, end bool) {
	if r.p.srv.EncodeHeaders(r.p.down, h, end) != nil {
		r.p.fails++
	}
	h.Release()
}

func (r *responseSide) OnData(_ protocol.StreamID, in reactor.View, n int, end bool) {
	p := r.p
	p.vec[0] = in.Peek(n)
	if p.srv.EncodeData(p.down, p.vec[:], end) != nil {
		p.fails++
	}
	p.vec[0] = nil
	in.Skip(n)
}

func (r *responseSide) OnTrailers(_ protocol.StreamID, t protocol.Headers) { t.Release() }
func (r *responseSide) OnReset(protocol.StreamID, error)                   { r.p.fails++ }

// BenchmarkProxyBoltToBolt is a whole proxied call through both codecs: the downstream request
// decoded and forwarded upstream, the upstream response decoded and forwarded downstream. The
// content of both is never copied; each side writes one writev per frame.
func BenchmarkProxyBoltToBolt(b *testing.B) {
	req, resp := benchFrames(b)
	down, up := &fakeConn{discard: true}, &fakeConn{discard: true}
	p := &proxy{}
	p.resp.p = p
	p.srv = newServerCodec(down, p, Limits{}.WithDefaults(), CodecOptions{}.WithDefaults())
	p.cli = newClientCodec(up, Limits{}.WithDefaults(), CodecOptions{}.WithDefaults())
	dv, uv := &fakeView{}, &fakeView{}
	b.ReportAllocs()
	b.SetBytes(int64(len(req) + len(resp)))
	for b.Loop() {
		dv.b = req
		if err := p.srv.Decode(dv); err != nil {
			b.Fatal(err)
		}
		_ = SetRequestID(resp, uint32(p.up))
		uv.b = resp
		if err := p.cli.Decode(uv); err != nil {
			b.Fatal(err)
		}
	}
	if p.fails != 0 || down.ops != b.N || up.ops != b.N || down.written != b.N*len(resp) || up.written != b.N*len(req) {
		b.Fatalf("fails %d, writes %d/%d, bytes %d/%d", p.fails, down.ops, up.ops, down.written, up.written)
	}
}
