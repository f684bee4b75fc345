//go:build linux && !race

package netpoll

// raceEnabled mirrors netpoll's build: without -race its poller stores the *FDOperator in the
// epoll event data (see layout.go, setReadInterest).
const raceEnabled = false
