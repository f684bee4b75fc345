//go:build linux

package netpoll

import (
	"golang.org/x/sys/unix"
)

// TCP states from include/net/tcp_states.h.
const (
	tcpFinWait1  = 4
	tcpFinWait2  = 5
	tcpTimeWait  = 6
	tcpClose     = 7
	tcpCloseWait = 8
	tcpLastAck   = 9
	tcpClosing   = 11
)

// peerEnd classifies why netpoll saw the connection end, from the socket's TCP state.
type peerEnd int

const (
	endReset    peerEnd = iota // reset or error: the socket is dead
	endFIN                     // the peer shut down its write side; ours is open (CLOSE_WAIT)
	endBothDone                // the peer's FIN arrived after our own (TIME_WAIT, CLOSING...)
)

// A socket whose FIN crossed ours is CLOSE once the kernel moved the connection to its
// time-wait entry, just like a reset one, so CLOSE counts as a reset only while our write side
// was still open (wshut false): then a plain FIN would have left it in CLOSE_WAIT.
func classifyEnd(fd int, wshut bool) peerEnd {
	info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return endReset
	}
	switch info.State {
	case tcpCloseWait:
		return endFIN
	case tcpTimeWait, tcpClosing, tcpLastAck, tcpFinWait2, tcpFinWait1:
		return endBothDone
	case tcpClose:
		if wshut {
			return endBothDone
		}
	}
	return endReset
}

// socketError returns and clears the socket's pending error (0 when none).
func socketError(fd int) unix.Errno {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil || v == 0 {
		return 0
	}
	return unix.Errno(v)
}

// setLingerZero makes the next close send a RST.
func setLingerZero(fd int) error {
	return unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
}

// dupFD duplicates fd (close-on-exec).
func dupFD(fd int) (int, error) {
	return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
}
