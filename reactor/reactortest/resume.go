package reactortest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strait-proxy/strait/reactor"
)

// testResumeRedelivers pins down the HTTP/1.1 pipelining pattern on a proxy: connection A
// takes one message, pauses with the rest still buffered, and is resumed by another
// connection B of the same executor (the upstream whose response just completed) right after
// A's OnData returned. Resuming must re-deliver A's held bytes without A's peer sending
// anything new, however the resume races the backend's reader of A.
func (s *suite) testResumeRedelivers(t *testing.T) {
	e := s.start(t, reactor.Options{Loops: 1})
	var (
		a       reactor.Conn                // touched only on the single executor
		bClient atomic.Pointer[net.TCPConn] // the test's side of B: A's handler pokes it
	)
	h := &funcs{data: func(c reactor.Conn, in reactor.View) {
		p := in.Peek(-1)
		if len(p) > 0 && p[0] == 'B' { // B: every byte resumes A
			in.Skip(in.Len())
			if a != nil {
				a.PauseRead(false)
			}
			return
		}
		a = c
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			return // a partial line: wait for more
		}
		if err := c.Write(p[:i+1]); err != nil {
			return
		}
		in.Skip(i + 1)
		if in.Len() > 0 {
			c.PauseRead(true)
			// B's data arrives while A's callback still runs, so B's reader is waiting for
			// the executor the moment A's OnData returns.
			bClient.Load().Write([]byte("B"))
			for start := time.Now(); time.Since(start) < 200*time.Microsecond; {
			}
		}
	}}
	addr, _ := e.listen(h)
	bClient.Store(e.dial(addr))
	const rounds, lines = 30, 30
	for r := 0; r < rounds; r++ {
		c := e.dial(addr)
		var batch bytes.Buffer
		for i := 0; i < lines; i++ {
			fmt.Fprintf(&batch, "round %d line %d\n", r, i)
		}
		if _, err := c.Write(batch.Bytes()); err != nil {
			e.fatalf("round %d: write: %v", r, err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		for i := 0; i < lines; i++ {
			line, err := br.ReadString('\n')
			if err != nil {
				e.fatalf("round %d: got %d of %d lines without sending more (held bytes not re-delivered on resume): %v", r, i, lines, err)
			}
			if want := fmt.Sprintf("round %d line %d\n", r, i); line != want {
				e.fatalf("round %d: line %d = %q, want %q", r, i, line, want)
			}
		}
		c.Close()
	}
}
