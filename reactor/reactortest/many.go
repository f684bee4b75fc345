package reactortest

import (
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/strait-proxy/strait/reactor"
)

// manyConns stays far below the 20,000 open files cap: client and server ends of every
// connection live in this process (2 x 2,000 descriptors).
const manyConns = 2000

// 8. 2,000 connections open at once, each doing a round trip.
func (s *suite) testManyConns(t *testing.T) {
	e := s.start(t, reactor.Options{})
	addr, _ := e.listen(echo())
	clients := make([]net.Conn, manyConns)
	errs := make(chan error, manyConns)
	sem := make(chan struct{}, 64) // dial concurrency, well inside the listen backlog
	var wg sync.WaitGroup
	start := time.Now()
	for i := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.DialTimeout("tcp", addr, stepTimeout)
			if err != nil {
				errs <- fmt.Errorf("dial %d: %w", i, err)
				return
			}
			clients[i] = c
		}()
	}
	wg.Wait()
	dialled := time.Since(start)
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
	}()
	select {
	case err := <-errs:
		e.fatalf("opening %d client connections: %v", manyConns, err)
	default:
	}
	e.eventually(stepTimeout, fmt.Sprintf("%d connections open at the server at once", manyConns), func() bool {
		return e.mon.openCount() == manyConns
	})
	dialed := time.Since(start)
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetDeadline(time.Now().Add(stepTimeout))
			msg := []byte(fmt.Sprintf("conn %06d says hello", i))
			if _, err := c.Write(msg); err != nil {
				errs <- fmt.Errorf("conn %d write: %w", i, err)
				return
			}
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(c, got); err != nil {
				errs <- fmt.Errorf("conn %d read: %w", i, err)
				return
			}
			if string(got) != string(msg) {
				errs <- fmt.Errorf("conn %d: sent %q, got %q", i, msg, got)
			}
		}()
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n < 5 {
			e.errorf("%v", err)
		}
		n++
	}
	if n > 0 {
		e.fatalf("%d of %d concurrent round trips failed", n, manyConns)
	}
	for _, c := range clients {
		c.Close()
	}
	e.eventually(closeTimeout, "every server conn to close after the clients closed", func() bool {
		return e.mon.openCount() == 0
	})
	if got := e.mon.totalOpened(); got != manyConns {
		e.fatalf("the server opened %d connections for %d clients", got, manyConns)
	}
	t.Logf("[%s] %d conns: dialled in %v, open at the server in %v, all done in %v", e.name, manyConns,
		dialled.Round(time.Millisecond), dialed.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}
