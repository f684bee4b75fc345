package stream

import (
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"

	"github.com/strait-proxy/strait/protocol"
)

// The deadline heap against a sorted model, through random insertions, moves and removals:
// the head is always the earliest deadline, and every stream knows its place.
func TestDeadlineHeap(t *testing.T) {
	ex := &execState{}
	rng := rand.New(rand.NewPCG(1, 2))
	streams := make([]*Stream, 200)
	for i := range streams {
		streams[i] = &Stream{}
	}
	model := map[*Stream]int64{}
	for step := range 20000 {
		s := streams[rng.IntN(len(streams))]
		if rng.IntN(4) == 0 {
			ex.setDue(s, 0)
			delete(model, s)
		} else {
			due := 1 + rng.Int64N(1000)
			ex.setDue(s, due)
			model[s] = due
		}
		if len(ex.due) != len(model) {
			t.Fatalf("step %d: heap has %d, model %d", step, len(ex.due), len(model))
		}
		for i, h := range ex.due {
			if int(h.hidx) != i+1 || model[h] != h.due {
				t.Fatalf("step %d: entry %d: hidx %d due %d, model %d", step, i, h.hidx, h.due, model[h])
			}
			if i > 0 && ex.due[(i-1)/2].due > h.due {
				t.Fatalf("step %d: heap order broken at %d", step, i)
			}
		}
	}
	// Popping gives the deadlines in order.
	var got, want []int64
	for _, d := range model {
		want = append(want, d)
	}
	slices.Sort(want)
	for len(ex.due) > 0 {
		s := ex.due[0]
		got = append(got, s.due)
		ex.heapRemove(s)
		if s.hidx != 0 {
			t.Fatal("a removed stream keeps its place")
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("popped %v, want %v", got, want)
	}
}

// The idle list is a FIFO with O(1) removal from anywhere.
func TestIdleList(t *testing.T) {
	ex := &execState{}
	ds := make([]*downstream, 6)
	for i := range ds {
		ds[i] = &downstream{}
		ex.idlePush(ds[i], int64(i+1))
	}
	ex.idleStop(ds[0]) // head
	ex.idleStop(ds[3]) // middle
	ex.idleStop(ds[5]) // tail
	ex.idleStop(ds[3]) // again: no-op
	ex.idlePush(ds[0], 10)
	var order []int64
	for d := ex.idleHead; d != nil; d = d.idleNext {
		order = append(order, d.idleAt)
		if d.idleNext != nil && d.idleNext.idlePrev != d {
			t.Fatal("broken back link")
		}
	}
	if !slices.Equal(order, []int64{2, 3, 5, 10}) || ex.idleTail != ds[0] || ds[3].idle || !ds[0].idle {
		t.Fatalf("idle list %v, tail %p", order, ex.idleTail)
	}
}

// A downstream keeps one stream inline, makes a table only while two or more are active,
// and drops it when they are gone; an idle downstream is one small struct.
func TestDownstreamStreams(t *testing.T) {
	if n := unsafe.Sizeof(downstream{}); n > 80 {
		t.Errorf("downstream is %d bytes, want at most 80", n)
	}
	d := &downstream{}
	s1, s2, s3 := &Stream{id: 1}, &Stream{id: 2}, &Stream{id: 3}
	d.addStream(s1)
	if d.one != s1 || d.more != nil || d.stream(1) != s1 || d.stream(2) != nil || d.numStreams() != 1 {
		t.Fatal("one stream is not inline")
	}
	d.addStream(s2)
	d.addStream(s3)
	if d.one != nil || len(d.more.many) != 3 || d.stream(2) != s2 || d.numStreams() != 3 {
		t.Fatal("three streams are not in the table")
	}
	var seen []protocol.StreamID
	d.eachStream(func(s *Stream) {
		seen = append(seen, s.id)
		d.removeStream(s.id) // ending streams while iterating
	})
	slices.Sort(seen)
	if !slices.Equal(seen, []protocol.StreamID{1, 2, 3}) || d.numStreams() != 0 || d.more.many != nil {
		t.Fatalf("saw %v, %d left, table %v", seen, d.numStreams(), d.more.many)
	}
	d.addStream(s3)
	if d.one != s3 {
		t.Fatal("after the table emptied, a stream is not inline again")
	}
	d.removeStream(3)
	if d.one != nil || d.numStreams() != 0 {
		t.Fatal("stream not removed")
	}
}
