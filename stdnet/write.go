package stdnet

import (
	"fmt"
	"net"
	"syscall"
	"unsafe"

	"github.com/strait-proxy/strait/reactor"
)

const (
	maxIov      = 64      // slices per direct writev (an on-stack iovec array)
	writerIov   = 256     // slices per blocking write of the writer goroutine
	writerBatch = 1 << 20 // bytes per blocking write, so the queue shrinks (and OnWritable comes) in steps
)

// Write implements reactor.Conn.
func (c *conn) Write(p []byte) error {
	c.one[0] = p
	err := c.writev(c.one[:])
	c.one[0] = nil
	return err
}

// Writev implements reactor.Conn.
func (c *conn) Writev(bufs [][]byte) error { return c.writev(bufs) }

// writev sends what the kernel takes now, without a copy, and queues a copy of the rest.
func (c *conn) writev(bufs [][]byte) error {
	total := 0
	for _, b := range bufs {
		total += len(b)
	}
	c.wmu.Lock()
	if err := c.writableLocked(); err != nil || total == 0 {
		c.wmu.Unlock()
		return err
	}
	n := 0
	if len(c.q) == 0 {
		var err error
		if n, err = c.tryWrite(bufs); err != nil {
			c.wmu.Unlock()
			return c.writeFailed(err)
		}
	}
	if rest := total - n; rest > 0 {
		if err := c.overflowLocked(rest); err != nil {
			c.wmu.Unlock()
			c.Abort(err)
			return err
		}
		b := reactor.NewBuffer()
		skip := n
		for _, p := range bufs {
			if skip >= len(p) {
				skip -= len(p)
				continue
			}
			b.AppendCopy(p[skip:])
			skip = 0
		}
		c.enqueueLocked(b)
	}
	c.wmu.Unlock()
	if n > 0 && c.hasTO.Load() {
		c.touch(false) // Write and Writev run on the executor
	}
	return nil
}

// Send implements reactor.Conn. The Buffer is written directly when nothing is queued;
// otherwise it joins the queue as is (no copy) and is released once written.
func (c *conn) Send(b *reactor.Buffer) error {
	if b == nil {
		return nil
	}
	c.wmu.Lock()
	if err := c.writableLocked(); err != nil {
		c.wmu.Unlock()
		b.Release()
		return err
	}
	n := 0
	if len(c.q) == 0 && b.Len() > 0 {
		var err error
		if n, err = c.tryWrite(b.Bytes()); err != nil {
			c.wmu.Unlock()
			b.Release()
			return c.writeFailed(err)
		}
		b.Consume(n)
	}
	if b.Len() == 0 {
		c.wmu.Unlock()
		b.Release()
	} else {
		if err := c.overflowLocked(b.Len()); err != nil {
			c.wmu.Unlock()
			b.Release()
			c.Abort(err)
			return err
		}
		c.enqueueLocked(b)
		c.wmu.Unlock()
	}
	if n > 0 {
		c.noteWrite() // Send may run anywhere
	}
	return nil
}

// Outbound implements reactor.Conn.
func (c *conn) Outbound() int { return int(c.outbound.Load()) }

// Congested implements reactor.Conn. Crossing the high watermark is noticed here, on the
// executor; the writer goroutine then queues OnWritable once the queue is below the low mark.
func (c *conn) Congested() bool {
	if c.congested {
		return true
	}
	high := int64(c.t.o.HighWatermark)
	if c.outbound.Load() <= high {
		return false
	}
	c.wmu.Lock()
	if c.outbound.Load() > high {
		c.congested, c.notify = true, true
		if c.writableFn == nil {
			c.writableFn = c.checkWritable
		}
	}
	c.wmu.Unlock()
	return c.congested
}

// checkWritable is the executor task the writer queues below the low watermark.
func (c *conn) checkWritable() {
	if c.closed || !c.congested {
		return
	}
	c.wmu.Lock()
	if c.outbound.Load() > int64(c.t.o.LowWatermark) { // refilled meanwhile: wait again
		c.notify = true
		c.wmu.Unlock()
		return
	}
	c.wmu.Unlock()
	c.congested = false
	if c.state.Load() == stateOpen {
		c.callWritable()
	}
}

// CloseWrite implements reactor.Conn: the FIN follows the queued bytes. Once the peer's FIN
// was seen as well, the connection closes with ErrPeerClosed.
func (c *conn) CloseWrite() error {
	if c.closed {
		return fmt.Errorf("stdnet: CloseWrite: %w", reactor.ErrClosed)
	}
	if c.peerClosed {
		c.Close(reactor.ErrPeerClosed)
		return nil
	}
	c.localShut = true
	c.wmu.Lock()
	if c.state.Load() != stateOpen {
		c.wmu.Unlock()
		return fmt.Errorf("stdnet: CloseWrite: %w", reactor.ErrClosed)
	}
	if c.wshut {
		c.wmu.Unlock()
		return nil
	}
	c.wshut = true
	if c.writing || len(c.q) > 0 {
		c.shutPending = true
		c.wmu.Unlock()
		return nil
	}
	c.wmu.Unlock()
	if err := c.nc.CloseWrite(); err != nil {
		return fmt.Errorf("stdnet: CloseWrite: %w", err)
	}
	return nil
}

func (c *conn) writableLocked() error {
	if c.state.Load() != stateOpen {
		return fmt.Errorf("stdnet: write: %w", reactor.ErrClosed)
	}
	if c.wshut {
		return fmt.Errorf("stdnet: write after CloseWrite: %w", reactor.ErrClosed)
	}
	return nil
}

func (c *conn) overflowLocked(more int) error {
	if q := c.outbound.Load() + int64(more); q > int64(c.t.o.MaxWriteBuffer) {
		return fmt.Errorf("stdnet: %d bytes would be queued (MaxWriteBuffer %d): %w",
			q, c.t.o.MaxWriteBuffer, reactor.ErrWriteBufferOverflow)
	}
	return nil
}

func (c *conn) enqueueLocked(b *reactor.Buffer) {
	c.q = append(c.q, b)
	c.outbound.Add(int64(b.Len()))
	if !c.writing {
		c.writing = true
		go c.writeLoop()
	}
}

func (c *conn) writeFailed(err error) error {
	if isReset(err) {
		err = fmt.Errorf("stdnet: write: %w (%w)", reactor.ErrPeerReset, err)
	} else {
		err = fmt.Errorf("stdnet: write: %w", err)
	}
	c.terminate(err)
	return err
}

// tryWrite makes one non-blocking write attempt; wmu is held. EAGAIN is not an error.
func (c *conn) tryWrite(bufs [][]byte) (int, error) {
	c.wbufs, c.wn, c.werr = bufs, 0, nil
	err := c.rc.Write(c.writeFn)
	c.wbufs = nil
	if err != nil {
		return 0, err
	}
	return c.wn, c.werr
}

// doWrite is tryWrite's RawConn callback: one attempt, never a wait.
func (c *conn) doWrite(fd uintptr) bool {
	var n int
	var err error
	for {
		if len(c.wbufs) == 1 {
			n, err = syscall.Write(int(fd), c.wbufs[0])
		} else {
			n, err = writev(int(fd), c.wbufs)
		}
		if err != syscall.EINTR {
			break
		}
	}
	if err == syscall.EAGAIN {
		n, err = 0, nil
	}
	c.wn, c.werr = max(n, 0), err
	return true
}

// writev is writev(2) over at most maxIov non-empty slices, with the iovecs on the stack.
func writev(fd int, bufs [][]byte) (int, error) {
	var iov [maxIov]syscall.Iovec
	cnt := 0
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		if cnt == maxIov {
			break
		}
		iov[cnt].Base = &b[0]
		iov[cnt].SetLen(len(b))
		cnt++
	}
	if cnt == 0 {
		return 0, nil
	}
	n, _, e := syscall.Syscall(syscall.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(cnt))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// writeLoop is the writer goroutine: it runs while bytes are queued, writing them with
// blocking writes outside every lock the executor takes.
func (c *conn) writeLoop() {
	vec := make([][]byte, 0, writerIov)
	for {
		c.wmu.Lock()
		if c.discard {
			c.releaseQueueLocked()
			c.writing = false
			c.wmu.Unlock()
			return
		}
		if len(c.q) == 0 {
			c.writing = false
			shut := c.shutPending
			c.shutPending = false
			closing := c.state.Load() == stateClosing
			c.wmu.Unlock()
			if shut {
				_ = c.nc.CloseWrite()
			}
			if closing {
				c.finish()
			}
			return
		}
		vec = c.batchLocked(vec[:0])
		c.wmu.Unlock()

		bufs := net.Buffers(vec)
		n, err := bufs.WriteTo(c.nc)
		clear(vec)

		c.wmu.Lock()
		c.consumeLocked(int(n))
		notify := c.notify && c.outbound.Load() <= int64(c.t.o.LowWatermark)
		if notify {
			c.notify = false
		}
		fn := c.writableFn
		c.wmu.Unlock()
		if n > 0 {
			c.noteWrite()
		}
		if notify {
			c.g.exec(c, c, fn)
		}
		if err != nil {
			if c.state.Load() == stateOpen {
				_ = c.writeFailed(err)
			} else {
				c.finish() // Close's flush hit its deadline, or the conn was aborted
			}
		}
	}
}

// batchLocked collects the head of the queue for one blocking write.
func (c *conn) batchLocked(vec [][]byte) [][]byte {
	size := 0
	for _, b := range c.q {
		for _, p := range b.Bytes() {
			if len(vec) == cap(vec) || size >= writerBatch {
				return vec
			}
			vec = append(vec, p)
			size += len(p)
		}
	}
	return vec
}

// consumeLocked drops n written bytes from the queue, releasing finished Buffers.
func (c *conn) consumeLocked(n int) {
	k := 0
	for n > 0 && k < len(c.q) {
		b := c.q[k]
		if l := b.Len(); l > n {
			b.Consume(n)
			c.outbound.Add(-int64(n))
			break
		} else {
			n -= l
			c.outbound.Add(-int64(l))
			b.Release()
			k++
		}
	}
	if k > 0 {
		m := copy(c.q, c.q[k:])
		clear(c.q[m:])
		c.q = c.q[:m]
	}
}

func (c *conn) releaseQueueLocked() {
	for _, b := range c.q {
		b.Release()
	}
	clear(c.q)
	c.q = c.q[:0]
	c.outbound.Store(0)
}
