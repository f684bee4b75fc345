package gnet

import (
	"fmt"
	"io"
	"sync/atomic"
	"testing"

	"github.com/strait-proxy/strait/reactor"
)

// fwd links a downstream and the upstream dialed near it; both run on one event loop.
type fwd struct{ down, up reactor.Conn }

func forwardHandler() *hfuncs {
	peer := func(c reactor.Conn) reactor.Conn {
		f := c.Context().(*fwd)
		if c == f.down {
			return f.up
		}
		return f.down
	}
	return &hfuncs{
		data: func(c reactor.Conn, in reactor.View) {
			p := peer(c)
			if p == nil || p.Congested() {
				c.PauseRead(true)
				return
			}
			if err := p.Write(in.Peek(-1)); err != nil { // same loop: a synchronous forward
				c.Close(err)
				return
			}
			in.Skip(in.Len())
			if p.Congested() {
				c.PauseRead(true)
			}
		},
		writable: func(c reactor.Conn) {
			if p := peer(c); p != nil {
				p.PauseRead(false)
			}
		},
		close: func(c reactor.Conn, err error) {
			if p := peer(c); p != nil {
				p.Close(err)
			}
		},
	}
}

// startProxy serves a forwarding proxy to backend on tr and returns its address.
func startProxy(tb testing.TB, tr *Transport, backend string) string {
	h := forwardHandler()
	up := forwardHandler()
	down := *h
	down.open = func(d reactor.Conn) {
		f := &fwd{down: d}
		d.SetContext(f)
		d.PauseRead(true)
		upOpen := *up
		upOpen.open = func(u reactor.Conn) { f.up = u; u.SetContext(f) }
		tr.Dial(d, backend, 0, &upOpen, func(u reactor.Conn, err error) {
			if err != nil {
				d.Close(err)
				return
			}
			d.PauseRead(false)
		})
	}
	addr, _ := listen(tb, tr, &down)
	return addr
}

// BenchmarkForward measures a round trip client -> proxy -> backend -> proxy -> client where
// the proxy's downstream and upstream share one gnet loop and forward view -> Write. The
// backend is a gnet echo on the same transport; the client is a plain net.Conn.
func BenchmarkForward(b *testing.B) {
	for _, size := range []int{64, 4 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			tr := newTransport(b, reactor.Options{Loops: 1})
			backend, _ := listen(b, tr, &hfuncs{data: func(c reactor.Conn, in reactor.View) {
				_ = c.Write(in.Peek(-1))
				in.Skip(in.Len())
			}})
			client := dial(b, startProxy(b, tr, backend))
			_ = client.SetDeadline(noDeadline)
			msg := pattern(1, 0, size)
			got := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := client.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(client, got); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSend measures Send from another goroutine: Detach-style owned buffers written by
// the loop with one writev per batch and released after.
func BenchmarkSend(b *testing.B) {
	tr := newTransport(b, reactor.Options{Loops: 1})
	conns := make(chan reactor.Conn, 1)
	addr, _ := listen(b, tr, &hfuncs{open: func(c reactor.Conn) { conns <- c }})
	client := dial(b, addr)
	_ = client.SetDeadline(noDeadline)
	c := <-conns
	const size = 4 << 10
	payload := pattern(2, 0, size)
	done := make(chan error, 1)
	var received atomic.Int64
	go func() {
		want := int64(b.N) * size
		p := make([]byte, 256<<10)
		for received.Load() < want {
			n, err := client.Read(p[:min(int64(len(p)), want-received.Load())])
			received.Add(int64(n))
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		buf := reactor.NewBuffer()
		buf.AppendCopy(payload)
		if err := c.Send(buf); err != nil {
			b.Fatal(err)
		}
		// Keep the backlog (Send queue plus gnet's outbound buffer) short: this measures the
		// path, not an unbounded backlog, which would end at MaxWriteBuffer.
		for int64(i+1)*size-received.Load() > 4<<20 {
			runtimeGosched()
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
