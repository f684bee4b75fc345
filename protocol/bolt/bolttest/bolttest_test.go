package bolttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strait-proxy/strait/protocol/bolt"
)

// echo answers with the request's class, header and content, plus the wire timeout it saw.
func echo(req *Message) *Message {
	h := map[string]string{"timeout-ms": strconv.FormatInt(req.Timeout.Milliseconds(), 10)}
	for k, v := range req.Header {
		h[k] = v
	}
	return &Message{Class: req.Class, Header: h, Content: req.Content}
}

// delayFromHeader delays each request by its "delay-ms" header.
func delayFromHeader(req *Message) time.Duration {
	ms, _ := strconv.Atoi(req.Header["delay-ms"])
	return time.Duration(ms) * time.Millisecond
}

func start(t *testing.T, h Handler, opt ServerOptions) (*Server, *Client) {
	t.Helper()
	srv, addr, err := Listen("127.0.0.1:0", h, opt)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := Dial(addr.String(), ClientOptions{Timeout: 5 * time.Second})
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cl.Close()
		srv.Close()
	})
	return srv, cl
}

func TestCallEcho(t *testing.T) {
	_, cl := start(t, echo, ServerOptions{})
	req := &Message{Class: "com.alipay.sofa.rpc.core.request.SofaRequest",
		Header: map[string]string{"service": "com.Echo:1.0", "empty": ""}, Content: []byte("hello bolt"), Timeout: 2 * time.Second}
	resp, err := cl.Call(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Kind != bolt.KindResponse || resp.Status != bolt.StatusSuccess || resp.Class != req.Class ||
		string(resp.Content) != "hello bolt" || resp.Header["service"] != "com.Echo:1.0" || resp.Codec != bolt.CodecHessian2 {
		t.Fatalf("response %+v", resp)
	}
	if v, ok := resp.Header["empty"]; !ok || v != "" {
		t.Fatalf("empty header value lost: %q %v", v, ok)
	}
	// The server saw the call timeout on the wire (a little less: time passed before send).
	ms, _ := strconv.Atoi(resp.Header["timeout-ms"])
	if ms < 1500 || ms > 2000 {
		t.Fatalf("wire timeout %d ms, want about 2000", ms)
	}
}

func TestConcurrentCalls(t *testing.T) {
	srv, cl := start(t, echo, ServerOptions{})
	const workers, calls = 16, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range calls {
				body := fmt.Appendf(nil, "worker %d call %d", w, i)
				resp, err := cl.Call(context.Background(), &Message{Content: body, Header: map[string]string{"w": strconv.Itoa(w)}})
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(resp.Content, body) || resp.Header["w"] != strconv.Itoa(w) {
					errs <- fmt.Errorf("worker %d call %d got %q", w, i, resp.Content)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := srv.Requests(); got != workers*calls {
		t.Fatalf("server saw %d requests, want %d", got, workers*calls)
	}
	if cl.Unmatched() != 0 {
		t.Fatalf("%d unmatched responses", cl.Unmatched())
	}
}

func TestOutOfOrderResponses(t *testing.T) {
	_, cl := start(t, echo, ServerOptions{Delay: delayFromHeader})
	type done struct {
		name string
		err  error
		body string
	}
	order := make(chan done, 3)
	call := func(name string, delay int) {
		resp, err := cl.Call(context.Background(), &Message{Content: []byte(name), Header: map[string]string{"delay-ms": strconv.Itoa(delay)}})
		d := done{name: name, err: err}
		if resp != nil {
			d.body = string(resp.Content)
		}
		order <- d
	}
	go call("slow", 600)
	time.Sleep(20 * time.Millisecond) // slow is sent first
	go call("medium", 300)
	time.Sleep(20 * time.Millisecond)
	go call("fast", 0)
	var got []string
	for range 3 {
		d := <-order
		if d.err != nil {
			t.Fatal(d.err)
		}
		if d.body != d.name {
			t.Fatalf("call %s got the response for %s", d.name, d.body)
		}
		got = append(got, d.name)
	}
	if fmt.Sprint(got) != "[fast medium slow]" {
		t.Fatalf("completion order %v, want [fast medium slow]", got)
	}
}

func TestHeartbeat(t *testing.T) {
	srv, cl := start(t, echo, ServerOptions{})
	for range 3 {
		if err := cl.Heartbeat(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if srv.Heartbeats() != 3 {
		t.Fatalf("server saw %d heartbeats", srv.Heartbeats())
	}
	// Heartbeats interleave with calls on the same connection.
	if _, err := cl.Call(context.Background(), &Message{Content: []byte("x")}); err != nil {
		t.Fatal(err)
	}
}

func TestHeartbeatUnanswered(t *testing.T) {
	srv, addr, err := Listen("127.0.0.1:0", echo, ServerOptions{IgnoreHeartbeats: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cl, err := Dial(addr.String(), ClientOptions{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	start := time.Now()
	if err := cl.Heartbeat(context.Background()); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Heartbeat = %v, want ErrTimeout", err)
	}
	if el := time.Since(start); el < 90*time.Millisecond || el > 2*time.Second {
		t.Fatalf("timed out after %v", el)
	}
	if srv.Heartbeats() != 1 {
		t.Fatalf("server saw %d heartbeats", srv.Heartbeats())
	}
}

func TestCallTimeoutAndLateResponse(t *testing.T) {
	_, cl := start(t, echo, ServerOptions{Delay: delayFromHeader})
	start := time.Now()
	_, err := cl.Call(context.Background(), &Message{Timeout: 50 * time.Millisecond, Header: map[string]string{"delay-ms": "1000"}})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Call = %v, want ErrTimeout", err)
	}
	if el := time.Since(start); el > 800*time.Millisecond {
		t.Fatalf("timeout took %v", el)
	}
	// The late response arrives, matches nothing, and does not disturb the connection.
	deadline := time.Now().Add(3 * time.Second)
	for cl.Unmatched() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("late response never arrived")
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := cl.Call(context.Background(), &Message{Content: []byte("after")})
	if err != nil || string(resp.Content) != "after" {
		t.Fatalf("call after a timeout: %v %+v", err, resp)
	}
	// A context deadline shorter than the call timeout wins.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := cl.Call(ctx, &Message{Timeout: time.Second, Header: map[string]string{"delay-ms": "300"}}); !errors.Is(err, ErrTimeout) {
		t.Fatalf("ctx deadline: %v", err)
	}
	// A cancelled context is not a timeout.
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if _, err := cl.Call(ctx, &Message{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ctx: %v", err)
	}
}

func TestOneway(t *testing.T) {
	got := make(chan *Message, 1)
	srv, cl := start(t, func(req *Message) *Message {
		if req.Kind == bolt.KindOneway {
			got <- req
		}
		return &Message{Content: []byte("must not be sent for a oneway")}
	}, ServerOptions{})
	if err := cl.Oneway(&Message{Class: "c", Content: []byte("fire and forget"), Header: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if string(m.Content) != "fire and forget" || m.Header["k"] != "v" || m.Class != "c" || m.Timeout >= 0 {
			t.Fatalf("server got %+v", m)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("oneway never reached the handler")
	}
	// No response came back: a following call is the only thing answered.
	if _, err := cl.Call(context.Background(), &Message{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if cl.Unmatched() != 0 || srv.Requests() != 2 {
		t.Fatalf("unmatched %d, requests %d", cl.Unmatched(), srv.Requests())
	}
}

func TestStatusResponseAndBusy(t *testing.T) {
	release := make(chan struct{})
	var entered atomic.Int32
	srv, cl := start(t, func(req *Message) *Message {
		if req.Header["block"] == "1" {
			entered.Add(1)
			<-release
		}
		return &Message{Status: bolt.StatusServerException, Content: []byte("boom")}
	}, ServerOptions{MaxInFlight: 2})
	resp, err := cl.Call(context.Background(), &Message{})
	if err != nil || resp.Status != bolt.StatusServerException || string(resp.Content) != "boom" {
		t.Fatalf("status response: %v %+v", err, resp)
	}
	// Fill both slots, then the next request is shed with SERVER_THREADPOOL_BUSY at once.
	// The first call's slot is freed only after its response is written, so a blocking call
	// may itself be shed while it is still held: it retries (and counts as shed).
	var wg sync.WaitGroup
	var retried atomic.Int64
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				resp, err := cl.Call(context.Background(), &Message{Header: map[string]string{"block": "1"}})
				if err != nil || resp.Status != bolt.StatusServerThreadpoolBusy {
					return
				}
				retried.Add(1)
				time.Sleep(time.Millisecond)
			}
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for entered.Load() != 2 {
		if time.Now().After(deadline) {
			close(release)
			t.Fatalf("%d of 2 blocking calls reached the handler", entered.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	resp, err = cl.Call(context.Background(), &Message{})
	if err != nil || resp.Status != bolt.StatusServerThreadpoolBusy || len(resp.Content) != 0 {
		t.Fatalf("over the bound: %v %+v", err, resp)
	}
	close(release)
	wg.Wait()
	if want := 1 + retried.Load(); srv.Busy() != want {
		t.Fatalf("busy count %d, want %d (1 shed call, %d shed retries)", srv.Busy(), want, retried.Load())
	}
}

func TestCloseFailsPendingCalls(t *testing.T) {
	_, cl := start(t, echo, ServerOptions{Delay: delayFromHeader})
	errc := make(chan error, 1)
	go func() {
		_, err := cl.Call(context.Background(), &Message{Header: map[string]string{"delay-ms": "2000"}})
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	cl.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("pending call: %v, want ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("pending call not failed by Close")
	}
	if _, err := cl.Call(context.Background(), &Message{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("call after Close: %v", err)
	}
}

func TestServerClosesOnGarbage(t *testing.T) {
	srv, addr, err := Listen("127.0.0.1:0", echo, ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for name, in := range map[string][]byte{
		"http":         []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"negative len": {1, 1, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0},
		"too large":    {1, 1, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0},
	} {
		nc, err := net.DialTimeout("tcp", addr.String(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nc.Write(in); err != nil {
			t.Fatal(err)
		}
		nc.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, err := nc.Read(make([]byte, 64))
		nc.Close()
		// EOF, or a reset if the server closed with bytes unread: either way, closed.
		var ne net.Error
		if n != 0 || err == nil || (errors.As(err, &ne) && ne.Timeout()) {
			t.Fatalf("%s: read %d bytes, %v; want the server to close", name, n, err)
		}
	}
}

func TestServerAnswersBadHeaderWithCodecException(t *testing.T) {
	srv, addr, err := Listen("127.0.0.1:0", echo, ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	nc, err := net.DialTimeout("tcp", addr.String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// A request whose 3-byte header block is a cut-short length prefix, then a heartbeat.
	f := bolt.Frame{Type: bolt.TypeRequest, CmdCode: bolt.CmdRequest, Version: 1, RequestID: 9, Codec: 1, Timeout: 100}
	b, err := bolt.AppendHead(nil, &f, 0)
	if err != nil {
		t.Fatal(err)
	}
	b[17] = 3
	b = append(b, 0, 0, 0)
	b = bolt.AppendHeartbeat(b, 10)
	if _, err := nc.Write(b); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	fr := newFrameReader(nc, bolt.Limits{})
	var got bolt.Frame
	if err := fr.next(&got); err != nil || got.Kind() != bolt.KindResponse || got.RequestID != 9 || got.Status != bolt.StatusCodecException {
		t.Fatalf("first answer: %v %+v", err, got)
	}
	if err := fr.next(&got); err != nil || got.Kind() != bolt.KindHeartbeatAck || got.RequestID != 10 {
		t.Fatalf("second answer: %v %+v", err, got)
	}
}

func TestLargeContent(t *testing.T) {
	_, cl := start(t, echo, ServerOptions{})
	body := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB: grows the read buffers
	resp, err := cl.Call(context.Background(), &Message{Content: body})
	if err != nil || !bytes.Equal(resp.Content, body) {
		t.Fatalf("1 MiB echo: %v, %d bytes back", err, len(resp.Content))
	}
}

func BenchmarkCall(b *testing.B) {
	srv, addr, err := Listen("127.0.0.1:0", echo, ServerOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	cl, err := Dial(addr.String(), ClientOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	req := &Message{Content: make([]byte, 1024), Header: map[string]string{"service": "com.Echo:1.0"}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := cl.Call(context.Background(), req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
