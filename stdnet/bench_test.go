package stdnet

import (
	"io"
	"net"
	"testing"

	"github.com/strait-proxy/strait/reactor"
)

// proxy is a minimal L4 forwarder on the transport, the way pipeline/tcpproxy uses it: the
// upstream is dialed near the downstream, bytes go from one conn's view into the other's
// Write, the source pauses while the destination is congested.
type proxy struct {
	tr      reactor.Transport
	backend string
}

type proxySide struct{ peer reactor.Conn }

func (p *proxy) side() *handler {
	return &handler{
		data: func(c reactor.Conn, in reactor.View) {
			s := c.Context().(*proxySide)
			if s.peer == nil {
				return
			}
			if err := s.peer.Write(in.Peek(-1)); err != nil {
				c.Close(err)
				return
			}
			in.Skip(in.Len())
			if s.peer.Congested() {
				c.PauseRead(true)
			}
		},
		writable: func(c reactor.Conn) {
			if s := c.Context().(*proxySide); s.peer != nil {
				s.peer.PauseRead(false)
			}
		},
		peerClose: func(c reactor.Conn) bool {
			if s := c.Context().(*proxySide); s.peer != nil {
				_ = s.peer.CloseWrite()
			}
			return true
		},
		close: func(c reactor.Conn, err error) {
			if s := c.Context().(*proxySide); s.peer != nil {
				s.peer.Close(err)
			}
		},
	}
}

func (p *proxy) downstream() *handler {
	h := p.side()
	up := p.side()
	h.open = func(d reactor.Conn) {
		ds := &proxySide{}
		d.SetContext(ds)
		d.PauseRead(true)
		up := *up
		up.open = func(u reactor.Conn) { u.SetContext(&proxySide{peer: d}) }
		p.tr.Dial(d, p.backend, 0, &up, func(u reactor.Conn, err error) {
			if err != nil {
				d.Close(err)
				return
			}
			ds.peer = u
			d.PauseRead(false)
		})
	}
	return h
}

// echoBackend is a plain net echo server.
func echoBackend(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// BenchmarkForward measures one client round trip through the proxy (client -> downstream ->
// upstream -> echo backend and back), i.e. two forwarded messages per op.
func BenchmarkForward(b *testing.B) {
	for _, size := range []int{128, 16 << 10} {
		b.Run(byteSize(size), func(b *testing.B) {
			tr := newStd(b, reactor.Options{})
			p := &proxy{tr: tr, backend: echoBackend(b)}
			addr := listen(b, tr, p.downstream())
			c := dial(b, addr)
			msg := make([]byte, size)
			got := make([]byte, size)
			b.SetBytes(int64(2 * size))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, got); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEcho measures one round trip to an echo handler on the transport.
func BenchmarkEcho(b *testing.B) {
	tr := newStd(b, reactor.Options{})
	addr := listen(b, tr, echoHandler())
	c := dial(b, addr)
	msg := make([]byte, 128)
	got := make([]byte, 128)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, got); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEchoPlainNet is the reference for BenchmarkEcho: the same round trip to a
// goroutine-per-connection echo server on plain net (4 KiB buffer), measured in the same run.
func BenchmarkEchoPlainNet(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4<<10)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
		}
	}()
	c := dial(b, ln.Addr().String())
	msg := make([]byte, 128)
	got := make([]byte, 128)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, got); err != nil {
			b.Fatal(err)
		}
	}
}

func byteSize(n int) string {
	if n >= 1<<10 {
		return itoa(n>>10) + "KiB"
	}
	return itoa(n) + "B"
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for ; n > 0; n /= 10 {
		i--
		b[i] = byte('0' + n%10)
	}
	return string(b[i:])
}
