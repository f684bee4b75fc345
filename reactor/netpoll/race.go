//go:build linux && race

package netpoll

// raceEnabled mirrors netpoll's build: under -race its poller keys operators by fd (see
// layout.go, setReadInterest).
const raceEnabled = true
