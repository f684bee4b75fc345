package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"

	"github.com/bytedance/gopkg/util/gopool"
)

// Pool is the bounded pool request tasks run on: gopool workers (at most Workers goroutines)
// plus a bounded backlog. Go refuses a task instead of growing without bound, so callers can
// shed load (503, RST_STREAM, a Bolt busy response) and stop reading.
type Pool struct {
	p        gopool.Pool
	inflight atomic.Int64
	max      int64
	log      *slog.Logger
}

// NewPool returns a pool of at most workers goroutines and backlog queued tasks.
func NewPool(name string, workers, backlog int, log *slog.Logger) *Pool {
	if workers <= 0 {
		workers = 1
	}
	if backlog < 0 {
		backlog = 0
	}
	if log == nil {
		log = slog.Default()
	}
	pl := &Pool{
		p:   gopool.NewPool(name, int32(workers), gopool.NewConfig()),
		max: int64(workers + backlog),
		log: log,
	}
	pl.p.SetPanicHandler(func(_ context.Context, r any) {
		log.Error("panic in pooled task", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	})
	return pl
}

// Go runs task on the pool and reports whether it was accepted. A panicking task is
// recovered and logged by the pool; tasks that know their connection and stream should
// recover themselves to log those ids.
func (pl *Pool) Go(task func()) bool {
	if pl.inflight.Add(1) > pl.max {
		pl.inflight.Add(-1)
		return false
	}
	pl.p.Go(func() {
		defer pl.inflight.Add(-1)
		task()
	})
	return true
}

// InFlight is the number of tasks queued or running.
func (pl *Pool) InFlight() int64 { return pl.inflight.Load() }
