package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// gRPC end to end through Strait, on every transport: a grpc-go client (h2c, prior
// knowledge) to an HTTP connection manager listener (codec AUTO, and HTTP2), routed to a
// cluster with explicit http2_protocol_options whose host is a grpc-go server running
// grpc.testing.TestService. Every call asserts what the application sees: messages and their
// bytes, streamed message counts, metadata both ways, header and trailer metadata, status
// codes, deadlines, and cancellation reaching the server.

// grpcMaxMsg is the message size limit both grpc-go ends are raised to (16 MiB messages plus
// their protobuf framing must fit).
const grpcMaxMsg = 32 << 20

// grpcEnd is what the backend saw when a blocked call's context ended.
type grpcEnd struct {
	method      string
	at          time.Time
	err         error // the handler context's error
	hadDeadline bool  // the call carried a deadline (grpc-timeout reached the server)
}

// grpcBackend implements grpc.testing.TestService:
//
//   - every call answers the request metadata x-md and x-md-bin in its response headers
//     (x-echo, x-echo-bin) and trailers (x-trailer, x-trailer-bin), and the length and
//     SHA-256 of the request payload it received (x-req-len, x-req-sha);
//   - response payloads are cachedBody(size): the client checks their hash;
//   - a call with metadata x-block signals started, then blocks until its context ends and
//     reports when and why on ended;
//   - a request's response_status is returned as the call's status.
type grpcBackend struct {
	testpb.UnimplementedTestServiceServer
	addr    string
	started chan string
	ended   chan grpcEnd
}

func startGRPCBackend(t testing.TB) *grpcBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &grpcBackend{addr: ln.Addr().String(), started: make(chan string, 16), ended: make(chan grpcEnd, 16)}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(grpcMaxMsg), grpc.MaxSendMsgSize(grpcMaxMsg))
	testpb.RegisterTestServiceServer(srv, b)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return b
}

func first(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// echo sets the response header and trailer metadata for a call whose request payload
// bytes were body; it returns whether the call asked to block.
func (b *grpcBackend) echo(ctx context.Context, body []byte) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	_ = grpc.SetHeader(ctx, metadata.Pairs(
		"x-echo", first(md, "x-md"), "x-echo-bin", first(md, "x-md-bin"),
		"x-req-len", strconv.Itoa(len(body)), "x-req-sha", sha(body)))
	_ = grpc.SetTrailer(ctx, metadata.Pairs("x-trailer", "t-"+first(md, "x-md"), "x-trailer-bin", first(md, "x-md-bin")))
	return len(md.Get("x-block")) > 0
}

// block waits for the call's context to end and reports it.
func (b *grpcBackend) block(ctx context.Context, method string) error {
	_, hasDeadline := ctx.Deadline()
	b.started <- method
	<-ctx.Done()
	b.ended <- grpcEnd{method: method, at: time.Now(), err: ctx.Err(), hadDeadline: hasDeadline}
	return status.FromContextError(ctx.Err()).Err()
}

func echoStatus(s *testpb.EchoStatus) error {
	if s == nil || s.GetCode() == 0 {
		return nil
	}
	return status.Error(codes.Code(s.GetCode()), s.GetMessage())
}

func (b *grpcBackend) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	if b.echo(ctx, req.GetPayload().GetBody()) {
		return nil, b.block(ctx, "UnaryCall")
	}
	if err := echoStatus(req.GetResponseStatus()); err != nil {
		return nil, err
	}
	return &testpb.SimpleResponse{Payload: &testpb.Payload{Body: cachedBody(int(req.GetResponseSize()))}}, nil
}

func (b *grpcBackend) StreamingOutputCall(req *testpb.StreamingOutputCallRequest, stream grpc.ServerStreamingServer[testpb.StreamingOutputCallResponse]) error {
	if b.echo(stream.Context(), req.GetPayload().GetBody()) {
		return b.block(stream.Context(), "StreamingOutputCall")
	}
	for _, p := range req.GetResponseParameters() {
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: cachedBody(int(p.GetSize()))}}); err != nil {
			return err
		}
	}
	return echoStatus(req.GetResponseStatus())
}

func (b *grpcBackend) StreamingInputCall(stream grpc.ClientStreamingServer[testpb.StreamingInputCallRequest, testpb.StreamingInputCallResponse]) error {
	var all bytes.Buffer
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		all.Write(m.GetPayload().GetBody())
	}
	b.echo(stream.Context(), all.Bytes())
	return stream.SendAndClose(&testpb.StreamingInputCallResponse{AggregatedPayloadSize: int32(all.Len())})
}

// FullDuplexCall answers every request with its own payload (ping-pong), then, for each
// response parameter, a payload of that size. With x-block it answers the first request and
// then blocks until the call ends.
func (b *grpcBackend) FullDuplexCall(stream grpc.BidiStreamingServer[testpb.StreamingOutputCallRequest, testpb.StreamingOutputCallResponse]) error {
	blocking := b.echo(stream.Context(), nil)
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: m.GetPayload()}); err != nil {
			return err
		}
		for _, p := range m.GetResponseParameters() {
			if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: cachedBody(int(p.GetSize()))}}); err != nil {
				return err
			}
		}
		if blocking {
			return b.block(stream.Context(), "FullDuplexCall")
		}
	}
}

// grpcRoutes sends every call to the grpc cluster, without a route timeout (streams live as
// long as the application wants; deadlines are the client's).
const grpcRoutes = `name: grpc
virtual_hosts:
- name: all
  domains: ["*"]
  routes:
  - match: {prefix: /, headers: [{name: x-route, string_match: {exact: dead}}]}
    route: {cluster: dead}
  - match: {prefix: /}
    route: {cluster: grpc, timeout: 0s}
`

// h2ClusterOptions makes a cluster speak h2c (prior knowledge) to its hosts.
const h2ClusterOptions = `typed_extension_protocol_options:
  envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
    "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
    explicit_http_config: { http2_protocol_options: {} }`

// h1ClusterOptions makes a cluster speak HTTP/1.1 to its hosts.
const h1ClusterOptions = `typed_extension_protocol_options:
  envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
    "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
    explicit_http_config: { http_protocol_options: {} }`

// hcmFilterCodec is hcmFilter with an explicit codec_type.
func hcmFilterCodec(statPrefix, codecType, routeConfig string) string {
	return `      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ` + statPrefix + `
          codec_type: ` + codecType + `
          route_config:
` + indent(routeConfig, 12) + `
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
`
}

// grpcBootstrap is a listener "grpc" (codec AUTO) and a listener "grpc-h2" (codec HTTP2),
// both routed to the cluster grpc on backend; calls with x-route: dead go to a cluster whose
// only host refuses connections.
func grpcBootstrap(t testing.TB, backend string) string {
	return bootstrapYAML(
		[]listenerSpec{
			{"grpc", hcmFilterCodec("grpc", "AUTO", grpcRoutes)},
			{"grpc-h2", hcmFilterCodec("grpc_h2", "HTTP2", grpcRoutes)},
		},
		[]clusterSpec{
			{name: "grpc", hosts: []string{backend}, extra: h2ClusterOptions},
			{name: "dead", hosts: []string{deadAddr(t)}, extra: h2ClusterOptions},
		}, "")
}

// dialGRPC is a grpc-go client for addr, plaintext h2c, with raised message limits.
func dialGRPC(t testing.TB, addr string) testpb.TestServiceClient {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(grpcMaxMsg), grpc.MaxCallSendMsgSize(grpcMaxMsg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return testpb.NewTestServiceClient(cc)
}

// grpcCallCtx is a context bounding one call of the suite, carrying metadata pairs.
func grpcCallCtx(t testing.TB, kv ...string) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return metadata.NewOutgoingContext(ctx, metadata.Pairs(kv...))
}

// checkEcho checks the metadata the backend answers in headers and trailers.
func checkEcho(t testing.TB, what string, header, trailer metadata.MD, md string, body []byte) {
	t.Helper()
	if got := first(header, "x-echo"); got != md {
		t.Errorf("%s: header x-echo = %q, want %q (request metadata lost?) headers %v", what, got, md, header)
	}
	if got := first(header, "x-echo-bin"); got != "\x00\xffbin" {
		t.Errorf("%s: header x-echo-bin = %q (binary request metadata)", what, got)
	}
	if body != nil && (first(header, "x-req-len") != strconv.Itoa(len(body)) || first(header, "x-req-sha") != sha(body)) {
		t.Errorf("%s: the server received %s bytes with sha %s, sent %d bytes with sha %s", what,
			first(header, "x-req-len"), first(header, "x-req-sha"), len(body), sha(body))
	}
	if got := first(trailer, "x-trailer"); got != "t-"+md {
		t.Errorf("%s: trailer x-trailer = %q, want %q; trailers %v", what, got, "t-"+md, trailer)
	}
	if got := first(trailer, "x-trailer-bin"); got != "\x00\xffbin" {
		t.Errorf("%s: trailer x-trailer-bin = %q", what, got)
	}
}

// waitEnded waits for the backend to report a blocked call's end.
func waitEnded(t testing.TB, b *grpcBackend, within time.Duration) grpcEnd {
	t.Helper()
	select {
	case e := <-b.ended:
		return e
	case <-time.After(within):
		t.Fatalf("the backend's call did not end within %v", within)
		return grpcEnd{}
	}
}

func waitStarted(t testing.TB, b *grpcBackend, method string) {
	t.Helper()
	select {
	case m := <-b.started:
		if m != method {
			t.Fatalf("backend started %s, want %s", m, method)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not reach the backend", method)
	}
}

func TestGRPCE2E(t *testing.T) {
	for _, tr := range e2eTransports() {
		t.Run(tr, func(t *testing.T) {
			b := startGRPCBackend(t)
			s := runStrait(t, tr, grpcBootstrap(t, b.addr))
			c := dialGRPC(t, s.addr(t, "grpc"))
			md := func(v string, extra ...string) context.Context {
				return grpcCallCtx(t, append([]string{"x-md", v, "x-md-bin", "\x00\xffbin"}, extra...)...)
			}

			t.Run("unary", func(t *testing.T) {
				body := cachedBody(1000)
				var header, trailer metadata.MD
				resp, err := c.UnaryCall(md("u1"), &testpb.SimpleRequest{ResponseSize: 3000, Payload: &testpb.Payload{Body: body}},
					grpc.Header(&header), grpc.Trailer(&trailer))
				if err != nil {
					t.Fatal(err)
				}
				if sha(resp.GetPayload().GetBody()) != sha(cachedBody(3000)) {
					t.Errorf("response payload: %d bytes, not the backend's", len(resp.GetPayload().GetBody()))
				}
				checkEcho(t, "unary", header, trailer, "u1", body)
			})

			t.Run("unary 16MiB both ways", func(t *testing.T) {
				body := cachedBody(16 << 20)
				var header, trailer metadata.MD
				resp, err := c.UnaryCall(md("big"), &testpb.SimpleRequest{ResponseSize: 16 << 20, Payload: &testpb.Payload{Body: body}},
					grpc.Header(&header), grpc.Trailer(&trailer))
				if err != nil {
					t.Fatal(err)
				}
				if got := resp.GetPayload().GetBody(); sha(got) != sha(cachedBody(16<<20)) {
					t.Errorf("16 MiB response: %d bytes, hash differs", len(got))
				}
				checkEcho(t, "16MiB", header, trailer, "big", body)
			})

			t.Run("status and trailers-only", func(t *testing.T) {
				var trailer metadata.MD
				_, err := c.UnaryCall(md("st"), &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.NotFound), Message: "no such thing ✓"}},
					grpc.Trailer(&trailer))
				if st := status.Convert(err); st.Code() != codes.NotFound || st.Message() != "no such thing ✓" {
					t.Errorf("status %v %q, want NotFound %q", st.Code(), st.Message(), "no such thing ✓")
				}
				if first(trailer, "x-trailer") != "t-st" {
					t.Errorf("trailers of a failed call: %v", trailer)
				}
			})

			t.Run("server streaming", func(t *testing.T) {
				sizes := []int{0, 1, 100, 16 << 10, 64 << 10, 200 << 10, 1 << 20, 3, 16 << 20, 7}
				req := &testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: []byte("req")}}
				for _, n := range sizes {
					req.ResponseParameters = append(req.ResponseParameters, &testpb.ResponseParameters{Size: int32(n)})
				}
				st, err := c.StreamingOutputCall(md("so"), req)
				if err != nil {
					t.Fatal(err)
				}
				got := 0
				for {
					m, err := st.Recv()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Fatalf("after %d messages: %v", got, err)
					}
					if got < len(sizes) && sha(m.GetPayload().GetBody()) != sha(cachedBody(sizes[got])) {
						t.Errorf("message %d: %d bytes, want %d of the backend's", got, len(m.GetPayload().GetBody()), sizes[got])
					}
					got++
				}
				if got != len(sizes) {
					t.Errorf("received %d messages, want %d", got, len(sizes))
				}
				header, err := st.Header()
				if err != nil {
					t.Fatal(err)
				}
				checkEcho(t, "server streaming", header, st.Trailer(), "so", []byte("req"))
			})

			t.Run("client streaming", func(t *testing.T) {
				st, err := c.StreamingInputCall(md("ci"))
				if err != nil {
					t.Fatal(err)
				}
				var all bytes.Buffer
				for i := range 40 {
					p := cachedBody(1 + i*3001)
					all.Write(p)
					if err := st.Send(&testpb.StreamingInputCallRequest{Payload: &testpb.Payload{Body: p}}); err != nil {
						t.Fatalf("send %d: %v", i, err)
					}
				}
				resp, err := st.CloseAndRecv()
				if err != nil {
					t.Fatal(err)
				}
				if int(resp.GetAggregatedPayloadSize()) != all.Len() {
					t.Errorf("the backend aggregated %d bytes, sent %d", resp.GetAggregatedPayloadSize(), all.Len())
				}
				header, err := st.Header()
				if err != nil {
					t.Fatal(err)
				}
				checkEcho(t, "client streaming", header, st.Trailer(), "ci", all.Bytes())
			})

			t.Run("bidirectional", func(t *testing.T) {
				st, err := c.FullDuplexCall(md("bd"))
				if err != nil {
					t.Fatal(err)
				}
				for i := range 100 {
					ping := []byte(fmt.Sprintf("ping %d", i))
					req := &testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: ping}}
					if i%10 == 9 {
						req.ResponseParameters = []*testpb.ResponseParameters{{Size: int32(i * 1000)}}
					}
					if err := st.Send(req); err != nil {
						t.Fatalf("send %d: %v", i, err)
					}
					m, err := st.Recv()
					if err != nil {
						t.Fatalf("recv %d: %v", i, err)
					}
					if !bytes.Equal(m.GetPayload().GetBody(), ping) {
						t.Fatalf("pong %d: %q", i, m.GetPayload().GetBody())
					}
					if i%10 == 9 {
						if m, err = st.Recv(); err != nil || sha(m.GetPayload().GetBody()) != sha(cachedBody(i*1000)) {
							t.Fatalf("extra message %d: %v (%d bytes)", i, err, len(m.GetPayload().GetBody()))
						}
					}
				}
				if err := st.CloseSend(); err != nil {
					t.Fatal(err)
				}
				if _, err := st.Recv(); !errors.Is(err, io.EOF) {
					t.Fatalf("after CloseSend: %v, want EOF", err)
				}
				header, err := st.Header()
				if err != nil {
					t.Fatal(err)
				}
				checkEcho(t, "bidirectional", header, st.Trailer(), "bd", nil)
			})

			t.Run("deadline", func(t *testing.T) {
				ctx, cancel := context.WithTimeout(md("dl", "x-block", "1"), 300*time.Millisecond)
				defer cancel()
				start := time.Now()
				_, err := c.UnaryCall(ctx, &testpb.SimpleRequest{})
				if code := status.Code(err); code != codes.DeadlineExceeded {
					t.Errorf("status %v (%v), want DeadlineExceeded", code, err)
				}
				if took := time.Since(start); took > 5*time.Second {
					t.Errorf("the call took %v with a 300 ms deadline", took)
				}
				waitStarted(t, b, "UnaryCall")
				e := waitEnded(t, b, 5*time.Second)
				if !e.hadDeadline {
					t.Errorf("the backend saw no deadline: grpc-timeout did not reach it")
				}
				if e.err == nil {
					t.Errorf("the backend's call context did not end")
				}
			})

			// A call Strait cannot deliver ends with a gRPC status and Strait's reason, not
			// with an HTTP error page the client can only call "unexpected HTTP status".
			t.Run("local reply is a grpc status", func(t *testing.T) {
				_, err := c.UnaryCall(md("dead", "x-route", "dead"), &testpb.SimpleRequest{})
				st := status.Convert(err)
				if st.Code() != codes.Unavailable || st.Message() != "upstream connect error" {
					t.Fatalf("status %v %q, want Unavailable \"upstream connect error\"", st.Code(), st.Message())
				}
			})

			// A cancelled call is seen as cancelled by the server within 100 ms.
			cancelled := func(t *testing.T, method string, call func(ctx context.Context) error) {
				ctx, cancel := context.WithCancel(md("cx", "x-block", "1"))
				errc := make(chan error, 1)
				go func() { errc <- call(ctx) }()
				waitStarted(t, b, method)
				at := time.Now()
				cancel()
				e := waitEnded(t, b, 5*time.Second)
				lag := e.at.Sub(at)
				t.Logf("%s: the backend saw the cancellation %v after the client's cancel", method, lag)
				if !errors.Is(e.err, context.Canceled) {
					t.Errorf("the backend's context ended with %v, want context.Canceled", e.err)
				}
				if lag > 100*time.Millisecond {
					t.Errorf("the backend saw the cancellation %v after the client's cancel, want < 100ms", lag)
				}
				if code := status.Code(<-errc); code != codes.Canceled {
					t.Errorf("client status %v, want Canceled", code)
				}
			}
			t.Run("cancel unary", func(t *testing.T) {
				cancelled(t, "UnaryCall", func(ctx context.Context) error {
					_, err := c.UnaryCall(ctx, &testpb.SimpleRequest{})
					return err
				})
			})
			t.Run("cancel bidirectional", func(t *testing.T) {
				cancelled(t, "FullDuplexCall", func(ctx context.Context) error {
					st, err := c.FullDuplexCall(ctx)
					if err != nil {
						return err
					}
					if err := st.Send(&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: []byte("x")}}); err != nil {
						return err
					}
					if _, err := st.Recv(); err != nil {
						return err
					}
					_, err = st.Recv() // blocks until the cancel
					return err
				})
			})

			t.Run("HTTP2 listener", func(t *testing.T) {
				c2 := dialGRPC(t, s.addr(t, "grpc-h2"))
				var header, trailer metadata.MD
				resp, err := c2.UnaryCall(md("h2"), &testpb.SimpleRequest{ResponseSize: 10, Payload: &testpb.Payload{Body: []byte("hi")}},
					grpc.Header(&header), grpc.Trailer(&trailer))
				if err != nil {
					t.Fatal(err)
				}
				if sha(resp.GetPayload().GetBody()) != sha(cachedBody(10)) {
					t.Errorf("response payload %q", resp.GetPayload().GetBody())
				}
				checkEcho(t, "HTTP2 listener", header, trailer, "h2", []byte("hi"))
			})

			// Every call above went through Strait: 10 streams on the AUTO listener. (Upstream
			// resets are not asserted: at the deadline the backend's own timer, from
			// grpc-timeout, may reset the stream before the client's reset arrives.)
			if n := s.counter("downstream_rq_total", "grpc"); n != 10 {
				t.Errorf("the AUTO listener's stream manager counted %d requests, want 10", n)
			}
		})
	}
}

// TestGRPCUpstreamResetStatus: when the upstream resets a gRPC call before its response
// headers, the caller gets a gRPC status from Strait (trailers-only: HTTP 200,
// application/grpc, grpc-status): UNAVAILABLE with Strait's reason, or DEADLINE_EXCEEDED
// when the reset came after the call's grpc-timeout had elapsed, which is how a server that
// enforces deadlines (grpc-go does) ends a call. The upstream here resets deterministically:
// it waits out the call's grpc-timeout (if any) and aborts without answering.
func TestGRPCUpstreamResetStatus(t *testing.T) {
	up := h2cUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if v := r.Header.Get("grpc-timeout"); v != "" {
			d, err := time.ParseDuration(strings.TrimSuffix(v, "m") + "ms")
			if err != nil {
				t.Errorf("grpc-timeout %q reached the upstream mangled", v)
			}
			time.Sleep(d)
		}
		panic(http.ErrAbortHandler) // RST_STREAM, no response headers
	}))
	for _, tr := range e2eTransports() {
		t.Run(tr, func(t *testing.T) {
			s := runStrait(t, tr, bootstrapYAML(
				[]listenerSpec{{"grpc", hcmFilterCodec("grpc", "AUTO", grpcRoutes)}},
				[]clusterSpec{
					{name: "grpc", hosts: []string{up}, extra: h2ClusterOptions},
					{name: "dead", hosts: []string{deadAddr(t)}, extra: h2ClusterOptions},
				}, ""))
			hc := h2cClient(t)
			call := func(timeout string) (*http.Response, time.Duration) {
				req, err := http.NewRequest("POST", "http://"+s.addr(t, "grpc")+"/grpc.testing.TestService/UnaryCall",
					bytes.NewReader([]byte{0, 0, 0, 0, 0}))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("content-type", "application/grpc+proto")
				req.Header.Set("te", "trailers")
				if timeout != "" {
					req.Header.Set("grpc-timeout", timeout)
				}
				start := time.Now()
				resp, err := hc.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || resp.Header.Get("content-type") != "application/grpc" {
					t.Errorf("status %d, content-type %q: want a trailers-only gRPC response", resp.StatusCode, resp.Header.Get("content-type"))
				}
				return resp, time.Since(start)
			}

			resp, _ := call("")
			if g, m := resp.Header.Get("grpc-status"), resp.Header.Get("grpc-message"); g != "14" ||
				m != "upstream connect error or disconnect/reset before headers" {
				t.Errorf("reset without a deadline: grpc-status %q, grpc-message %q; want 14 (UNAVAILABLE) and the reason", g, m)
			}

			resp, took := call("200m")
			if g, m := resp.Header.Get("grpc-status"), resp.Header.Get("grpc-message"); g != "4" || !strings.HasPrefix(m, "deadline exceeded") {
				t.Errorf("reset after grpc-timeout: grpc-status %q, grpc-message %q; want 4 (DEADLINE_EXCEEDED)", g, m)
			}
			if took < 200*time.Millisecond || took > 5*time.Second {
				t.Errorf("answered after %v for a 200 ms grpc-timeout", took)
			}
		})
	}
}
