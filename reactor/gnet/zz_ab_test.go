package gnet

import (
	"context"
	"io"
	"net"
	"testing"

	gnetv2 "github.com/panjf2000/gnet/v2"

	"github.com/strait-proxy/strait/reactor"
)

func goEcho(b *testing.B) string {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	b.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go io.Copy(c, c)
		}
	}()
	return l.Addr().String()
}

type rawFwd struct {
	gnetv2.BuiltinEventEngine
	backend net.Addr
	ready   chan gnetv2.Engine
}

func (r *rawFwd) OnBoot(e gnetv2.Engine) gnetv2.Action { r.ready <- e; return gnetv2.None }
func (r *rawFwd) OnOpen(c gnetv2.Conn) ([]byte, gnetv2.Action) {
	if peer, ok := c.Context().(gnetv2.Conn); ok { // upstream opened
		peer.SetContext(c)
		return nil, gnetv2.None
	}
	c.SetContext(nil)
	_, _ = c.EventLoop().Register(gnetv2.NewContext(context.Background(), c), r.backend)
	return nil, gnetv2.None
}
func (r *rawFwd) OnTraffic(c gnetv2.Conn) gnetv2.Action {
	peer, _ := c.Context().(gnetv2.Conn)
	if peer == nil {
		return gnetv2.None
	}
	b, _ := c.Next(-1)
	_, _ = peer.Write(b)
	return gnetv2.None
}

func runRTT(b *testing.B, addr string) {
	c, _ := net.Dial("tcp", addr)
	defer c.Close()
	msg, got := make([]byte, 64), make([]byte, 64)
	c.Write(msg)
	io.ReadFull(c, got)
	b.ResetTimer()
	for range b.N {
		c.Write(msg)
		io.ReadFull(c, got)
	}
}

func BenchmarkZZRawGnet(b *testing.B) {
	be := goEcho(b)
	ba, _ := net.ResolveTCPAddr("tcp", be)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	r := &rawFwd{backend: ba, ready: make(chan gnetv2.Engine, 1)}
	go gnetv2.Run(r, "tcp://"+addr, gnetv2.WithLogger(quietLogger{}), gnetv2.WithLoadBalancing(gnetv2.LeastConnections))
	e := <-r.ready
	defer e.Stop(context.Background())
	runRTT(b, addr)
}

func BenchmarkZZOurs(b *testing.B) {
	be := goEcho(b)
	tr := newTransport(b, reactor.Options{})
	runRTT(b, startProxy(b, tr, be))
}
