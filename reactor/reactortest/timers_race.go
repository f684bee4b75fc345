//go:build race

package reactortest

// timerAllocCases: with -race there is no allocation measurement (see timers_norace.go).
func (s *suite) timerAllocCases() []subtest {
	return nil
}
