//go:build !race

package reactortest

// timerAllocCases are the Timers cases that measure allocations: the race detector allocates
// on its own, so they exist only in builds without -race.
func (s *suite) timerAllocCases() []subtest {
	return []subtest{{"NoAllocs", s.timersNoAllocs}}
}
