package reactortest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strait-proxy/strait/reactor"
)

// 11. Exec and Send from other goroutines.
func (s *suite) testExecSend(t *testing.T) {
	// Four goroutines Exec 250 functions each while the client keeps the conn busy with
	// round trips. Each goroutine's functions must run in its order; the functions and OnData
	// share unsynchronised state, so -race reports any that ran off the executor.
	t.Run("ExecOrder", func(t *testing.T) {
		e := s.start(t, reactor.Options{})
		const goroutines, per = 4, 250
		type state struct {
			seq       [goroutines][]int
			dataBytes int
		}
		type opened struct {
			c  reactor.Conn
			st *state
		}
		conns := make(chan opened, 1)
		h := echo()
		data := h.data
		h.open = func(c reactor.Conn) {
			st := &state{}
			c.SetContext(st)
			conns <- opened{c, st}
		}
		h.data = func(c reactor.Conn, in reactor.View) {
			c.Context().(*state).dataBytes += in.Len()
			data(c, in)
		}
		addr, _ := e.listen(h)
		client := e.dial(addr)
		o := recv(e, conns, stepTimeout, "OnOpen")
		stopTraffic := make(chan struct{})
		trafficDone := make(chan error, 1)
		go func() {
			buf := make([]byte, 5)
			for {
				select {
				case <-stopTraffic:
					trafficDone <- nil
					return
				default:
				}
				if _, err := client.Write([]byte("hello")); err != nil {
					trafficDone <- err
					return
				}
				if _, err := io.ReadFull(client, buf); err != nil {
					trafficDone <- err
					return
				}
			}
		}()
		time.Sleep(20 * time.Millisecond) // round trips are under way
		var refused atomic.Int32
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range per {
					if !o.c.Exec(func() { o.st.seq[g] = append(o.st.seq[g], i) }) {
						refused.Add(1)
					}
					if i%16 == 0 {
						time.Sleep(100 * time.Microsecond) // interleave with OnData
					}
				}
			}()
		}
		wg.Wait()
		close(stopTraffic)
		if err := recv(e, trafficDone, stepTimeout, "the client's round trips"); err != nil {
			e.fatalf("client round trips during Exec: %v", err)
		}
		if n := refused.Load(); n > 0 {
			e.fatalf("Exec returned false %d times on an open conn", n)
		}
		snap := make(chan [goroutines][]int, 1)
		if !o.c.Exec(func() {
			var cp [goroutines][]int
			for g := range cp {
				cp[g] = append([]int(nil), o.st.seq[g]...)
			}
			snap <- cp
		}) {
			e.fatalf("Exec returned false on an open conn")
		}
		seqs := recv(e, snap, stepTimeout, "the final Exec")
		for g, seq := range seqs {
			if len(seq) != per {
				e.fatalf("goroutine %d: %d of %d Exec functions ran", g, len(seq), per)
			}
			for i, v := range seq {
				if v != i {
					e.fatalf("goroutine %d: Exec function %d ran in position %d (order not kept)", g, v, i)
				}
			}
		}
	})

	t.Run("ExecAfterClose", func(t *testing.T) {
		e := s.start(t, reactor.Options{})
		conns := make(chan reactor.Conn, 1)
		closed := make(chan closeEvent, 1)
		h := &funcs{
			open:  func(c reactor.Conn) { conns <- c },
			close: func(c reactor.Conn, err error) { closed <- closeEvent{c: c, err: err} },
		}
		addr, _ := e.listen(h)
		client := e.dial(addr)
		c := recv(e, conns, stepTimeout, "OnOpen")
		ran := make(chan struct{}, 1)
		if !c.Exec(func() { ran <- struct{}{} }) {
			e.fatalf("Exec returned false on an open conn")
		}
		recv(e, ran, stepTimeout, "an Exec function on an open conn")
		_ = client.Close()
		recv(e, closed, closeTimeout, "OnClose after the client closed")
		if c.Exec(func() { ran <- struct{}{} }) {
			e.fatalf("Exec returned true after OnClose")
		}
		select {
		case <-ran:
			e.fatalf("an Exec function ran after OnClose")
		case <-time.After(50 * time.Millisecond):
		}
	})

	// Four goroutines Send 100 two-slice Buffers each; the client checks every frame's bytes
	// and each goroutine's order, and every Buffer is released.
	t.Run("SendOrder", func(t *testing.T) {
		e := s.start(t, reactor.Options{})
		const goroutines, per = 4, 100
		conns := make(chan reactor.Conn, 1)
		h := &funcs{open: func(c reactor.Conn) { conns <- c }}
		addr, _ := e.listen(h)
		client := e.dial(addr)
		c := recv(e, conns, stepTimeout, "OnOpen")
		pats := make([]*pattern, goroutines)
		for g := range pats {
			pats[g] = newPattern(uint64(80 + g))
		}
		var released atomic.Int64
		sendErr := make(chan error, goroutines)
		for g := range goroutines {
			go func() {
				r := rand.New(rand.NewPCG(uint64(g), 9))
				var off int64
				for i := range per {
					n := 1 + r.IntN(32<<10)
					hdr := make([]byte, 8)
					hdr[0] = byte(g)
					binary.BigEndian.PutUint32(hdr[1:5], uint32(i))
					binary.BigEndian.PutUint16(hdr[5:7], uint16(n>>8))
					hdr[7] = byte(n)
					b := reactor.NewBuffer()
					b.AppendOwned(hdr, nil)
					b.AppendOwned(pats[g].bytes(off, n), countingReleaser{&released})
					off += int64(n)
					if err := c.Send(b); err != nil {
						sendErr <- fmt.Errorf("goroutine %d Send %d: %w", g, i, err)
						return
					}
				}
				sendErr <- nil
			}()
		}
		var next [goroutines]int
		var offs [goroutines]int64
		hdr := make([]byte, 8)
		for frame := 0; frame < goroutines*per; frame++ {
			if _, err := io.ReadFull(client, hdr); err != nil {
				e.fatalf("client reading frame %d of %d: %v", frame, goroutines*per, err)
			}
			g, i := int(hdr[0]), int(binary.BigEndian.Uint32(hdr[1:5]))
			n := int(binary.BigEndian.Uint16(hdr[5:7]))<<8 | int(hdr[7])
			if g >= goroutines || i != next[g] {
				e.fatalf("frame %d: from goroutine %d seq %d, want seq %d (Sends of one goroutine reordered or lost)",
					frame, g, i, next[min(g, goroutines-1)])
			}
			p := make([]byte, n)
			if _, err := io.ReadFull(client, p); err != nil {
				e.fatalf("client reading the payload of frame %d: %v", frame, err)
			}
			if m := pats[g].mismatch(p, offs[g]); m >= 0 {
				e.fatalf("goroutine %d frame %d: payload byte %d differs", g, i, m)
			}
			next[g]++
			offs[g] += int64(n)
		}
		for range goroutines {
			if err := recv(e, sendErr, stepTimeout, "the senders"); err != nil {
				e.fatalf("%v", err)
			}
		}
		e.eventually(closeTimeout, "every sent Buffer to be released", func() bool {
			return released.Load() == goroutines*per
		})
		if n := released.Load(); n != goroutines*per {
			e.fatalf("%d Buffers released, want %d", n, goroutines*per)
		}
		_ = client.Close()
		e.eventually(closeTimeout, "OnClose", func() bool { return e.mon.openCount() == 0 })
		var late atomic.Int64
		if err := c.Send(ownedBuffer([]byte("late"), &late)); !errors.Is(err, reactor.ErrClosed) {
			e.fatalf("Send after OnClose returned %s, want an error wrapping ErrClosed", describe(err))
		}
		e.eventually(closeTimeout, "the Buffer Send refused to be released", func() bool { return late.Load() == 1 })
	})
}
