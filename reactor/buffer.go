package reactor

import (
	"sync"

	"github.com/bytedance/gopkg/lang/mcache"
)

// Releaser is anything whose memory returns to a pool when released: a netpoll Reader slice,
// a pooled chunk. Release is called exactly once.
type Releaser interface {
	Release() error
}

// Buffer is an owned sequence of byte slices that may cross goroutines: a detached part of a
// read View, or bytes an encoder produced. Whoever holds a Buffer must either pass it on (Send
// takes ownership) or call Release exactly once. A Buffer is not safe for concurrent use.
type Buffer struct {
	bufs   [][]byte
	n      int
	pooled [][]byte // mcache allocations to free on Release
	refs   []Releaser
}

var bufferPool = sync.Pool{New: func() any { return new(Buffer) }}

// NewBuffer returns an empty Buffer from a pool.
func NewBuffer() *Buffer { return bufferPool.Get().(*Buffer) }

// Len is the number of unconsumed bytes.
func (b *Buffer) Len() int { return b.n }

// Bytes returns the unconsumed bytes as a vector for writev. The slices stay owned by b.
func (b *Buffer) Bytes() [][]byte { return b.bufs }

// AppendCopy copies p into pooled memory owned by b.
func (b *Buffer) AppendCopy(p []byte) {
	if len(p) == 0 {
		return
	}
	m := mcache.Malloc(len(p))
	copy(m, p)
	b.pooled = append(b.pooled, m)
	b.bufs = append(b.bufs, m)
	b.n += len(p)
}

// AppendOwned appends p by reference. r (may be nil) is released together with b, after
// which p must no longer be used by anyone.
func (b *Buffer) AppendOwned(p []byte, r Releaser) {
	if r != nil {
		b.refs = append(b.refs, r)
	}
	if len(p) == 0 {
		return
	}
	b.bufs = append(b.bufs, p)
	b.n += len(p)
}

// AppendPooled appends p, which must come from mcache.Malloc, and frees it on Release.
func (b *Buffer) AppendPooled(p []byte) {
	b.pooled = append(b.pooled, p)
	if len(p) == 0 {
		return
	}
	b.bufs = append(b.bufs, p)
	b.n += len(p)
}

// Consume drops the first n bytes (after a partial write); the memory stays owned until
// Release.
func (b *Buffer) Consume(n int) {
	if n >= b.n {
		b.bufs = b.bufs[:0]
		b.n = 0
		return
	}
	b.n -= n
	for n > 0 {
		if len(b.bufs[0]) > n {
			b.bufs[0] = b.bufs[0][n:]
			return
		}
		n -= len(b.bufs[0])
		b.bufs[0] = nil
		b.bufs = b.bufs[1:]
	}
}

// CopyTo copies the unconsumed bytes into dst and returns the number copied.
func (b *Buffer) CopyTo(dst []byte) int {
	n := 0
	for _, p := range b.bufs {
		n += copy(dst[n:], p)
		if n == len(dst) {
			break
		}
	}
	return n
}

// Release frees every pooled slice and releaser and returns b to its pool. b must not be used
// afterwards. Release on a nil Buffer is a no-op.
func (b *Buffer) Release() {
	if b == nil {
		return
	}
	for i, p := range b.pooled {
		mcache.Free(p)
		b.pooled[i] = nil
	}
	for i, r := range b.refs {
		_ = r.Release()
		b.refs[i] = nil
	}
	clear(b.bufs)
	b.bufs, b.pooled, b.refs, b.n = b.bufs[:0], b.pooled[:0], b.refs[:0], 0
	bufferPool.Put(b)
}
