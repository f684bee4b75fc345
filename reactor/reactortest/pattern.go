package reactortest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"time"

	"github.com/strait-proxy/strait/reactor"
)

// patternLen is the period of a pattern stream: not a power of two and not a multiple of any
// buffer size, so a lost, duplicated or reordered segment shifts the stream and is caught.
const patternLen = 1<<20 + 13

// pattern is a deterministic pseudo-random byte stream: byte i is block[i mod patternLen].
// Each direction of a test uses its own seed, so crossed streams are caught too.
type pattern struct{ block []byte }

func newPattern(seed uint64) *pattern {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, patternLen+8)
	for i := 0; i < patternLen; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return &pattern{block: b[:patternLen]}
}

// fill writes the stream's bytes [off, off+len(dst)) into dst.
func (p *pattern) fill(dst []byte, off int64) {
	for len(dst) > 0 {
		n := copy(dst, p.block[off%patternLen:])
		dst = dst[n:]
		off += int64(n)
	}
}

// bytes returns the stream's bytes [off, off+n).
func (p *pattern) bytes(off int64, n int) []byte {
	b := make([]byte, n)
	p.fill(b, off)
	return b
}

// mismatch returns the index in got of the first byte that differs from the stream at off,
// or -1 when got matches.
func (p *pattern) mismatch(got []byte, off int64) int {
	done := 0
	for done < len(got) {
		seg := p.block[(off+int64(done))%patternLen:]
		if len(seg) > len(got)-done {
			seg = seg[:len(got)-done]
		}
		if !bytes.Equal(got[done:done+len(seg)], seg) {
			for k := range seg {
				if got[done+k] != seg[k] {
					return done + k
				}
			}
		}
		done += len(seg)
	}
	return -1
}

// writeStream writes total bytes of p to c in chunks of chunk bytes; progress, when not nil,
// follows the bytes written.
func writeStream(c net.Conn, p *pattern, total int64, chunk int, progress *atomic.Int64) error {
	buf := make([]byte, chunk)
	for off := int64(0); off < total; {
		n := int(min(int64(chunk), total-off))
		p.fill(buf[:n], off)
		w, err := c.Write(buf[:n])
		off += int64(w)
		if progress != nil {
			progress.Store(off)
		}
		if err != nil {
			return fmt.Errorf("client write at offset %d of %d: %w", off, total, err)
		}
	}
	return nil
}

// pace slows a client reader down: it is called before the first read with 0 and after each
// read with the bytes read so far.
type pace func(got int64)

// slowPace holds the first read back until ready() holds (at most readyWithin), so that the
// sender has certainly met back-pressure, and then sleeps pause after every every bytes.
func slowPace(ready func() bool, readyWithin time.Duration, every int64, pause time.Duration) pace {
	var next int64 = -1
	return func(got int64) {
		if next < 0 {
			deadline := time.Now().Add(readyWithin)
			for !ready() && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			next = every
			return
		}
		if got >= next {
			next = got + every
			time.Sleep(pause)
		}
	}
}

// stalled reports, when polled, whether a writer's progress has not moved for 300 ms (it is
// blocked on a full window) or it wrote everything.
func stalled(progress *atomic.Int64, total int64) func() bool {
	last, since := int64(-1), time.Now()
	return func() bool {
		p := progress.Load()
		switch {
		case p >= total:
			return true
		case p != last:
			last, since = p, time.Now()
			return false
		}
		return p > 0 && time.Since(since) > 300*time.Millisecond
	}
}

// readStream reads exactly total bytes of p from c, comparing every byte, and then, when
// wantEOF, expects end of stream. It returns how many bytes arrived before the failure.
func readStream(c net.Conn, p *pattern, total int64, wantEOF bool, slow pace) (int64, error) {
	buf := make([]byte, 64<<10)
	var got int64
	if slow != nil {
		slow(got)
	}
	for got < total {
		n, err := c.Read(buf[:min(int64(len(buf)), total-got)])
		if m := p.mismatch(buf[:n], got); m >= 0 {
			return got, fmt.Errorf("byte %d of the stream differs (got %#02x, want %#02x)",
				got+int64(m), buf[m], p.block[(got+int64(m))%patternLen])
		}
		got += int64(n)
		if err != nil {
			if err == io.EOF {
				return got, fmt.Errorf("stream ended early: %d of %d bytes arrived", got, total)
			}
			return got, fmt.Errorf("after %d of %d bytes: %w", got, total, err)
		}
		if slow != nil {
			slow(got)
		}
	}
	if !wantEOF {
		return got, nil
	}
	n, err := c.Read(buf[:1])
	if n > 0 {
		return got, fmt.Errorf("%d bytes expected, more arrived", total)
	}
	if err != io.EOF {
		return got, fmt.Errorf("after all %d bytes, expected EOF, got %v", total, err)
	}
	return got, nil
}

// verifier checks a pattern stream arriving at a handler; it runs on the executor.
type verifier struct {
	p   *pattern
	off int64
	bad int64 // offset of the first wrong byte, -1 when none
}

func newVerifier(p *pattern) *verifier { return &verifier{p: p, bad: -1} }

// consume checks and skips everything in the view.
func (v *verifier) consume(in reactor.View) {
	b := in.Peek(-1)
	if len(b) != in.Len() {
		v.bad = v.off // Peek(-1) must return all unconsumed bytes
	}
	if m := v.p.mismatch(b, v.off); m >= 0 && v.bad < 0 {
		v.bad = v.off + int64(m)
	}
	v.off += int64(len(b))
	in.Skip(len(b))
}

// streamer writes total bytes of a pattern to a connection, respecting back-pressure: it
// writes a chunk only while the connection is not congested and resumes from OnWritable. It
// runs on the executor.
type streamer struct {
	p           *pattern
	total, off  int64
	buf         []byte // reused after every Write: Write must have copied or sent it
	maxOutbound int
	stops       atomic.Int64 // times writing stopped because the conn was congested
	err         error
	finished    bool
	done        func(c reactor.Conn) // called once, after the last byte was written
}

func newStreamer(p *pattern, total int64, chunk int, done func(reactor.Conn)) *streamer {
	return &streamer{p: p, total: total, buf: make([]byte, chunk), done: done}
}

func (s *streamer) pump(c reactor.Conn) {
	if s.err != nil || s.finished {
		return
	}
	for s.off < s.total {
		if c.Congested() {
			s.stops.Add(1)
			return
		}
		n := int(min(int64(len(s.buf)), s.total-s.off))
		s.p.fill(s.buf[:n], s.off)
		if err := c.Write(s.buf[:n]); err != nil {
			s.err = fmt.Errorf("server Write at offset %d: %w", s.off, err)
			return
		}
		s.off += int64(n)
		// Scribble over the slice: a backend that kept a reference instead of copying sends
		// garbage and the client's comparison catches it.
		clear(s.buf[:n])
		s.maxOutbound = max(s.maxOutbound, c.Outbound())
	}
	s.finished = true
	if s.done != nil {
		s.done(c)
	}
}
