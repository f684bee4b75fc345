//go:build linux

package netpoll

import (
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strait-proxy/strait/reactor"
)

// side is one half of a forwarded pair (the conn's Context).
type side struct{ peer reactor.Conn }

// forwarder is a minimal L4 proxy on the transport: the upstream is dialed near the downstream
// and bytes go from one conn's view straight into the other's Write.
type forwarder struct {
	tr      reactor.Transport
	backend string
}

func (f *forwarder) OnOpen(c reactor.Conn) {
	if c.Context() != nil { // the upstream: linked by its dial's OnOpen wrapper
		return
	}
	d := &side{}
	c.SetContext(d)
	c.PauseRead(true)
	f.tr.Dial(c, f.backend, 0, &upstream{f: f, down: c}, func(u reactor.Conn, err error) {
		if err != nil {
			c.Close(err)
			return
		}
		d.peer = u
		c.PauseRead(false)
	})
}

func (f *forwarder) OnData(c reactor.Conn, in reactor.View) {
	peer := c.Context().(*side).peer
	if peer.Congested() {
		c.PauseRead(true)
		return
	}
	if err := peer.Write(in.Peek(-1)); err != nil {
		c.Close(err)
		return
	}
	in.Skip(in.Len())
	if peer.Congested() {
		c.PauseRead(true)
	}
}

func (f *forwarder) OnWritable(c reactor.Conn) {
	if p := c.Context().(*side).peer; p != nil {
		p.PauseRead(false)
	}
}

func (f *forwarder) OnPeerClose(c reactor.Conn) bool {
	if p := c.Context().(*side).peer; p != nil {
		return p.CloseWrite() == nil
	}
	return false
}

func (f *forwarder) OnClose(c reactor.Conn, err error) {
	if p := c.Context().(*side).peer; p != nil {
		p.Close(err)
	}
}

// upstream links itself to its downstream in OnOpen, before the dial's done runs.
type upstream struct {
	f    *forwarder
	down reactor.Conn
}

func (u *upstream) OnOpen(c reactor.Conn)                  { c.SetContext(&side{peer: u.down}) }
func (u *upstream) OnData(c reactor.Conn, in reactor.View) { u.f.OnData(c, in) }
func (u *upstream) OnWritable(c reactor.Conn)              { u.f.OnWritable(c) }
func (u *upstream) OnPeerClose(c reactor.Conn) bool        { return u.f.OnPeerClose(c) }
func (u *upstream) OnClose(c reactor.Conn, err error)      { u.f.OnClose(c, err) }

// proxy starts a transport running the forwarder in front of backend.
func proxy(b *testing.B, backend string) string {
	tr, err := New(reactor.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tr.Close() })
	ln, err := tr.Listen("127.0.0.1:0", &forwarder{tr: tr, backend: backend})
	if err != nil {
		b.Fatal(err)
	}
	return ln.Addr().String()
}

// BenchmarkForward measures the proxy path client -> netpoll forwarder -> backend: a 64 KiB
// stream into a sink, and 64-byte round trips through an echo backend. Allocations are the
// whole process's (client and backend use preallocated buffers).
func BenchmarkForward(b *testing.B) {
	b.Run("Stream64KiB", func(b *testing.B) {
		const chunk = 64 << 10
		bl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer bl.Close()
		var got atomic.Int64
		go func() {
			c, err := bl.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			buf := make([]byte, 256<<10)
			for {
				n, err := c.Read(buf)
				got.Add(int64(n))
				if err != nil {
					return
				}
			}
		}()
		c, err := net.Dial("tcp", proxy(b, bl.Addr().String()))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		msg := make([]byte, chunk)
		b.SetBytes(chunk)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := c.Write(msg); err != nil {
				b.Fatal(err)
			}
		}
		want := int64(b.N) * chunk
		deadline := time.Now().Add(time.Minute)
		for got.Load() < want {
			if time.Now().After(deadline) {
				b.Fatalf("backend got %d of %d bytes", got.Load(), want)
			}
			time.Sleep(100 * time.Microsecond)
		}
	})

	b.Run("PingPong64B", func(b *testing.B) {
		bl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer bl.Close()
		go func() {
			c, err := bl.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			_, _ = io.Copy(c, c)
		}()
		c, err := net.Dial("tcp", proxy(b, bl.Addr().String()))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		msg, buf := make([]byte, 64), make([]byte, 64)
		b.SetBytes(64)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := c.Write(msg); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}
