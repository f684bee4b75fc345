package reactortest

import (
	"fmt"
	"sort"
	"testing"

	"github.com/strait-proxy/strait/reactor"
)

// 14. The fixed executor set: with Loops = 2, accepted connections (and nil-near dials)
// spread over executors 0 and 1, a conn dialed near another reports its ExecutorID, and
// callbacks of conns sharing an executor never overlap (checked by the monitor throughout;
// here with many busy conns on two executors).
func (s *suite) testExecutors(t *testing.T) {
	const loops, clients = 2, 8
	e := s.start(t, reactor.Options{Loops: loops})
	ids := make(chan int, 64)
	h := echo()
	h.open = func(c reactor.Conn) { ids <- c.ExecutorID() }
	addr, _ := e.listen(h)
	conns := make([]interface{ Close() error }, 0, clients)
	seen := map[int]int{}
	for i := range clients {
		c := e.dial(addr)
		conns = append(conns, c)
		e.roundTrip(c, []byte(fmt.Sprintf("conn %d", i)), "round trip")
		seen[recv(e, ids, stepTimeout, "OnOpen")]++
	}
	var got []int
	for id := range seen {
		got = append(got, id)
	}
	sort.Ints(got)
	if len(got) != loops || got[0] != 0 || got[1] != 1 {
		e.fatalf("with Loops %d, %d accepted conns got ExecutorIDs %v (counts %v), want both 0 and 1",
			loops, clients, got, seen)
	}

	// A dial near each accepted conn joins its executor; nil-near dials use the set too.
	type near struct {
		c  reactor.Conn
		id int
	}
	accepted := make(chan near, clients)
	e2 := s.start(t, reactor.Options{Loops: loops})
	srv := echo()
	srv.open = func(c reactor.Conn) { accepted <- near{c, c.ExecutorID()} }
	addr2, _ := e2.listen(srv)
	for range 4 {
		c := e2.dial(addr2)
		conns = append(conns, c)
		e2.roundTrip(c, []byte("x"), "round trip")
		n := recv(e2, accepted, stepTimeout, "OnOpen")
		d := newDialRecorder()
		var doneExec int
		e2.tr.Dial(n.c, addr, 0, e2.mon.wrap(d.handler()), func(c reactor.Conn, err error) {
			if c != nil {
				doneExec = c.ExecutorID()
			}
			d.done(c, err)
		})
		r := recv(e2, d.result, stepTimeout, "Dial's done")
		if r.err != nil {
			e2.fatalf("Dial near conn %d: %v", n.c.ID(), r.err)
		}
		if doneExec != n.id {
			e2.fatalf("a conn dialed near conn %d (executor %d) reports ExecutorID %d", n.c.ID(), n.id, doneExec)
		}
	}
	d := newDialRecorder()
	var nilID int
	e2.tr.Dial(nil, addr, 0, e2.mon.wrap(d.handler()), func(c reactor.Conn, err error) {
		if c != nil {
			nilID = c.ExecutorID()
		}
		d.done(c, err)
	})
	if r := recv(e2, d.result, stepTimeout, "Dial's done"); r.err != nil {
		e2.fatalf("Dial with a nil near: %v", r.err)
	}
	if nilID < 0 || nilID >= loops {
		e2.fatalf("a nil-near dial got ExecutorID %d with Loops %d", nilID, loops)
	}
	for _, c := range conns {
		c.Close()
	}
}
