package gnet

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/strait-proxy/strait/reactor"
)

// TestDeadLoopTaskPostsTask: on a dead loop (its engine stopped) tasks run inline on the
// posting goroutine; a task that posts to the same loop (a timer function closing or Exec-ing
// a connection of its loop) must not deadlock on the loop's lock, and runs after it, not
// nested in it.
func TestDeadLoopTaskPostsTask(t *testing.T) {
	tr := newTransport(t, reactor.Options{})
	l := &loop{t: tr, dead: true}
	var order []int
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.post(task{op: opExec, fn: func() {
			order = append(order, 1)
			l.post(task{op: opExec, fn: func() { order = append(order, 3) }})
			order = append(order, 2)
		}})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a task posting to its own dead loop deadlocked")
	}
	if len(order) != 3 || order[0] != 1 || order[1] != 2 || order[2] != 3 {
		t.Fatalf("ran in order %v, want [1 2 3]", order)
	}
}

// TestDeadLoopPostWhileBusy: a post that finds the dead loop busy on another goroutine leaves
// its task to that goroutine, which runs it before it lets the loop go.
func TestDeadLoopPostWhileBusy(t *testing.T) {
	tr := newTransport(t, reactor.Options{})
	l := &loop{t: tr, dead: true}
	inFirst := make(chan struct{})
	release := make(chan struct{})
	var ran atomic.Int32
	firstDone := make(chan struct{})
	go func() {
		defer close(firstDone)
		l.post(task{op: opExec, fn: func() {
			close(inFirst)
			<-release
		}})
	}()
	<-inFirst
	l.post(task{op: opExec, fn: func() { ran.Add(1) }}) // returns at once: the loop is busy
	if ran.Load() != 0 {
		t.Fatal("the second task ran while the first one was still running")
	}
	close(release)
	select {
	case <-firstDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the first post did not return")
	}
	if ran.Load() != 1 {
		t.Fatalf("the task posted while the loop was busy ran %d times, want 1 (before the busy post returned)", ran.Load())
	}
}
