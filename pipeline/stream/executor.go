package stream

import (
	"time"

	"github.com/strait-proxy/strait/pipeline"
	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/reactor"
)

// execState is what one executor owns for one stream manager: its upstream connection pools,
// the deadlines of its downstream connections and streams with the one executor timer
// (reactor.Conn.Schedule) that serves them all, scratch space for calls that do not keep it,
// and finished streams kept for reuse. Only code running on that executor touches it.
//
// Deadlines live here rather than in each connection or stream so that they cost no
// allocation and almost no memory per connection:
//   - Idle downstream connections (no stream) are a FIFO list: every connection of the
//     manager has the same idle timeout, so the oldest idle connection is always the first to
//     expire. Joining or leaving the list is O(1) and a connection carries only its links.
//   - Streams with a route deadline, a stream idle timeout or a per-try timeout are a min-heap
//     on their next due time. Activity does not move a stream in the heap; when it comes due
//     it re-checks and re-enters (see Stream.armTimer).
//
// The timer is armed for the earliest of the two heads and re-armed when it fires; a later
// deadline never moves it, and one that went away lets it fire once for nothing.
type execState struct {
	f     *factory
	id    int // the executor's id
	pools map[poolKey]*connPool

	vec [1][]byte          // scratch vector for zero-copy EncodeData of a view
	lb  pipeline.LBContext // scratch load-balancer context (ChooseHost does not keep it)

	idleHead, idleTail *downstream // connections without a stream, oldest first
	due                []*Stream   // min-heap on Stream.due
	timer              reactor.Timer
	timerAt            int64  // what timer is armed for (factory clock); 0 when it is not
	fire               func() // ex.onTimer, bound once

	spare []*Stream // finished streams ready for reuse (see Stream.reusable)

	// Codecs that queued output while a read callback of this executor ran
	// (protocol.FlushQueue): flushed once when the outermost one returns, so what one read
	// produces for a connection leaves in one write.
	reading int
	dirty   []protocol.Flusher
}

// QueueFlush implements protocol.FlushQueue.
func (ex *execState) QueueFlush(f protocol.Flusher) bool {
	if ex.reading == 0 {
		return false
	}
	ex.dirty = append(ex.dirty, f)
	return true
}

// enterRead and leaveRead bracket a read callback (downstream or upstream OnData).
func (ex *execState) enterRead() { ex.reading++ }

func (ex *execState) leaveRead() {
	ex.reading--
	if ex.reading > 0 {
		return
	}
	for i, f := range ex.dirty {
		ex.dirty[i] = nil
		_ = f.Flush() // a failed write surfaces as the connection closing
	}
	ex.dirty = ex.dirty[:0]
}

// batch gives a codec the executor's flush queue, if it can use one.
func (ex *execState) batch(codec any) {
	if b, ok := codec.(protocol.Batcher); ok {
		b.SetFlushQueue(ex)
	}
}

// maxSpareStreams bounds the streams an executor keeps for reuse: enough for the streams one
// executor finishes between two of its requests arriving, little memory when it goes idle.
const maxSpareStreams = 32

func newExecState(f *factory, id int) *execState {
	ex := &execState{f: f, id: id, pools: map[poolKey]*connPool{}}
	ex.fire = ex.onTimer
	return ex
}

// clock is the manager's monotonic clock in nanoseconds, always positive.
func (f *factory) clock() int64 { return int64(time.Since(f.t0)) }

// arm makes sure the timer fires no later than at. Any connection of the executor can arm
// it: the timer belongs to the executor.
func (ex *execState) arm(rc reactor.Conn, at int64) {
	if ex.timerAt != 0 && ex.timerAt <= at {
		return
	}
	d := time.Duration(at - ex.f.clock())
	if d < time.Millisecond {
		d = time.Millisecond // the wheel rounds up to its tick anyway
	}
	ex.timerAt = at
	rc.Schedule(&ex.timer, d, ex.fire)
}

func (ex *execState) onTimer() {
	ex.timerAt = 0
	now := ex.f.clock()
	idle := int64(ex.f.cfg.IdleTimeout)
	for d := ex.idleHead; d != nil && idle > 0 && now-d.idleAt >= idle; d = ex.idleHead {
		ex.idleStop(d)
		ex.f.stats.cxIdleTimeout.Add(1)
		d.rc().Close(reactor.ErrIdleTimeout)
	}
	for len(ex.due) > 0 && ex.due[0].due <= now {
		s := ex.due[0]
		ex.heapRemove(s)
		s.onDeadline(now)
	}
	if d := ex.idleHead; d != nil {
		ex.arm(d.rc(), d.idleAt+idle)
	}
	if len(ex.due) > 0 {
		s := ex.due[0]
		ex.arm(s.d.rc(), s.due)
	}
}

// --- idle connections -------------------------------------------------------------------

// idleStart starts d's idle timeout: it has no stream now.
func (ex *execState) idleStart(d *downstream) {
	t := ex.f.cfg.IdleTimeout
	if t <= 0 || d.idle || d.closed {
		return
	}
	ex.idlePush(d, ex.f.clock())
	ex.arm(d.rc(), d.idleAt+int64(t))
}

// idlePush appends d, idle since now, to the idle list.
func (ex *execState) idlePush(d *downstream, now int64) {
	d.idle = true
	d.idleAt = now
	d.idlePrev, d.idleNext = ex.idleTail, nil
	if ex.idleTail != nil {
		ex.idleTail.idleNext = d
	} else {
		ex.idleHead = d
	}
	ex.idleTail = d
}

// idleStop stops d's idle timeout (a stream started, or it closed).
func (ex *execState) idleStop(d *downstream) {
	if !d.idle {
		return
	}
	d.idle = false
	if d.idlePrev != nil {
		d.idlePrev.idleNext = d.idleNext
	} else {
		ex.idleHead = d.idleNext
	}
	if d.idleNext != nil {
		d.idleNext.idlePrev = d.idlePrev
	} else {
		ex.idleTail = d.idlePrev
	}
	d.idlePrev, d.idleNext = nil, nil
}

// --- stream deadlines -------------------------------------------------------------------

// setDue places s in the heap at due (factory clock), or takes it out for 0. The caller
// arms the timer.
func (ex *execState) setDue(s *Stream, due int64) {
	if due == 0 {
		ex.heapRemove(s)
		return
	}
	s.due = due
	if s.hidx == 0 {
		ex.due = append(ex.due, s)
		s.hidx = int32(len(ex.due))
		ex.up(len(ex.due) - 1)
	} else {
		i := int(s.hidx) - 1
		if !ex.down(i) {
			ex.up(i)
		}
	}
}

func (ex *execState) heapRemove(s *Stream) {
	if s.hidx == 0 {
		return
	}
	i, last := int(s.hidx)-1, len(ex.due)-1
	if i != last {
		ex.swap(i, last)
	}
	ex.due[last] = nil
	ex.due = ex.due[:last]
	s.hidx = 0
	if i != last {
		if !ex.down(i) {
			ex.up(i)
		}
	}
}

func (ex *execState) swap(i, j int) {
	h := ex.due
	h[i], h[j] = h[j], h[i]
	h[i].hidx, h[j].hidx = int32(i+1), int32(j+1)
}

func (ex *execState) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if ex.due[i].due <= ex.due[j].due {
			return
		}
		ex.swap(i, j)
		j = i
	}
}

// down sifts element i down and reports whether it moved.
func (ex *execState) down(i0 int) bool {
	i, n := i0, len(ex.due)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && ex.due[r].due < ex.due[l].due {
			j = r
		}
		if ex.due[i].due <= ex.due[j].due {
			break
		}
		ex.swap(i, j)
		i = j
	}
	return i > i0
}
