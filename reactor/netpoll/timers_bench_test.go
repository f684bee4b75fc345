//go:build linux

package netpoll

import (
	"testing"

	"github.com/strait-proxy/strait/reactor/reactortest"
)

// BenchmarkTimers: Conn.Schedule/Unschedule from a callback, and 1,000 timers firing on the
// executor (see reactortest.BenchTimers).
func BenchmarkTimers(b *testing.B) { reactortest.BenchTimers(b, New) }
