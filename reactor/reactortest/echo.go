package reactortest

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/strait-proxy/strait/reactor"
)

// 1. Echo of small and large messages, many round trips, and a framed echo that exercises the
// View rules (partial frames left unconsumed, Peek, Detach crossing goroutines, Send).
func (s *suite) testEcho(t *testing.T) {
	t.Run("Small", func(t *testing.T) {
		e := s.start(t, reactor.Options{})
		addr, _ := e.listen(echo())
		c := e.dial(addr)
		r := rand.New(rand.NewPCG(1, 2))
		for i := range 400 {
			n := 1 + r.IntN(1024)
			switch i {
			case 0:
				n = 1
			case 1:
				n = 1024
			}
			msg := make([]byte, n)
			for j := range msg {
				msg[j] = byte(r.Uint32())
			}
			e.roundTrip(c, msg, fmt.Sprintf("round trip %d (%d bytes)", i, n))
		}
	})

	t.Run("Large", func(t *testing.T) {
		e := s.start(t, reactor.Options{})
		addr, _ := e.listen(echo())
		c := e.dial(addr)
		p := newPattern(11)
		const size = 1 << 20
		for i := range 8 {
			off := int64(i) * size
			werr := make(chan error, 1)
			go func() {
				_, err := c.Write(p.bytes(off, size))
				werr <- err
			}()
			got := make([]byte, size)
			if _, err := io.ReadFull(c, got); err != nil {
				e.fatalf("message %d: client read of the 1 MiB echo: %v", i, err)
			}
			if m := p.mismatch(got, off); m >= 0 {
				e.fatalf("message %d: echo differs at byte %d of 1 MiB", i, m)
			}
			if err := recv(e, werr, stepTimeout, "the client's 1 MiB write"); err != nil {
				e.fatalf("message %d: client write: %v", i, err)
			}
		}
	})

	t.Run("Framed", func(t *testing.T) { s.testFramedEcho(t) })
}

// testFramedEcho: the client sends length-prefixed frames cut at arbitrary points; the server
// parses with Peek, leaves partial frames unconsumed, Detaches each payload and hands it to a
// sender goroutine that returns it with Send. The client must get the payloads back in order.
func (s *suite) testFramedEcho(t *testing.T) {
	e := s.start(t, reactor.Options{})
	type state struct {
		out chan *reactor.Buffer
	}
	h := &funcs{
		open: func(c reactor.Conn) {
			st := &state{out: make(chan *reactor.Buffer, 1024)}
			c.SetContext(st)
			go func() {
				for b := range st.out {
					if err := c.Send(b); err != nil {
						e.errorf("Send of a detached payload: %v", err)
					}
				}
			}()
		},
		data: func(c reactor.Conn, in reactor.View) {
			st := c.Context().(*state)
			for in.Len() >= 4 {
				hdr := in.Peek(4)
				if len(hdr) != 4 {
					e.errorf("Peek(4) with %d bytes unconsumed returned %d bytes", in.Len(), len(hdr))
					c.Close(nil)
					return
				}
				n := int(binary.BigEndian.Uint32(hdr))
				if in.Len() < 4+n {
					if all := in.Peek(4 + n + 1); len(all) != in.Len() {
						e.errorf("Peek(n > Len) returned %d bytes, want all %d", len(all), in.Len())
					}
					return // partial frame: must be delivered again with the rest
				}
				in.Skip(4)
				before := in.Len()
				b := in.Detach(n)
				if b.Len() != n || in.Len() != before-n {
					e.errorf("Detach(%d): buffer has %d bytes, view went from %d to %d",
						n, b.Len(), before, in.Len())
				}
				select {
				case st.out <- b:
				default:
					e.errorf("framed echo: sender queue full")
					b.Release()
				}
			}
		},
		close: func(c reactor.Conn, err error) { close(c.Context().(*state).out) },
	}
	addr, _ := e.listen(h)
	c := e.dial(addr)

	p := newPattern(21)
	r := rand.New(rand.NewPCG(3, 4))
	var wire []byte // what the client sends: frames
	var total int64
	for range 300 {
		n := r.IntN(24 << 10)
		if r.IntN(10) == 0 {
			n = 100<<10 + r.IntN(64<<10)
		}
		wire = binary.BigEndian.AppendUint32(wire, uint32(n))
		wire = append(wire, p.bytes(total, n)...)
		total += int64(n)
	}
	werr := make(chan error, 1)
	go func() { werr <- writeChopped(c, wire, r) }()
	if got, err := readStream(c, p, total, false, nil); err != nil {
		e.fatalf("framed echo of %d payload bytes: %v (received %d)", total, err, got)
	}
	if err := recv(e, werr, stepTimeout, "the client's chopped writes"); err != nil {
		e.fatalf("%v", err)
	}
}

// writeChopped writes p in pieces of random size, pausing now and then so that pieces
// arrive in separate reads.
func writeChopped(c net.Conn, p []byte, r *rand.Rand) error {
	for i := 0; len(p) > 0; i++ {
		n := 1 + r.IntN(3000)
		if r.IntN(4) == 0 {
			n = 1 + r.IntN(5)
		}
		n = min(n, len(p))
		if _, err := c.Write(p[:n]); err != nil {
			return fmt.Errorf("client write: %w", err)
		}
		p = p[n:]
		if i%50 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	return nil
}
