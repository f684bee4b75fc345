package bolt

import (
	"errors"
	"fmt"

	"github.com/bytedance/gopkg/lang/mcache"

	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/reactor"
)

// Errors of the codec's encoders (wrapped with %w).
var (
	// ErrQueueFull means a frame could not be queued behind the frame being written because
	// the connection already holds CodecOptions.MaxQueuedBytes of queued content. A stream
	// error: that stream is answered (server side) or failed (client side).
	ErrQueueFull = errors.New("bolt: outbound queue full")
	// ErrContentLength means a stream's content did not match the length its head announced.
	ErrContentLength = errors.New("bolt: content does not match the announced length")
	// ErrUnknownStream means an encoder was called for a stream the codec does not know, or
	// out of order (content before the head, a second head).
	ErrUnknownStream = errors.New("bolt: unknown stream")
	// ErrTooManyStreams is returned by NewStream when MaxStreams streams are active.
	ErrTooManyStreams = errors.New("bolt: too many concurrent streams")
	// ErrNotReusable is returned by NewStream after a connection error.
	ErrNotReusable = errors.New("bolt: connection not reusable")
)

// outFrame is a frame the writer accepted but has not put on the wire yet: its head is held
// until its first content arrives, or it waits (with a copy of its content so far) for the
// frame being written to finish.
type outFrame struct {
	id     protocol.StreamID
	head   []byte          // mcache copy of the head part
	data   *reactor.Buffer // content queued behind the open frame; nil when none
	remain int             // content bytes the producer still owes
}

// frameWriter keeps Bolt frames contiguous on one connection. Bolt v1 cannot interleave
// frames: once a frame's first byte is on the wire, every other frame waits until its last
// content byte was written. Several producers share a connection (responses of streams that
// came from different upstream connections; requests of different downstream connections),
// and a frame's content may arrive over several reads, so:
//
//   - a head whose content has not arrived is held (a small pooled copy) and sent together
//     with its first content bytes in one writev; content is written straight from the
//     producer's slices (no copy);
//   - while a frame is open (partly written), other frames are queued: heads and content are
//     copied into pooled memory, bounded by maxQueued content bytes, and written, complete
//     frames first, as soon as the open frame is finished.
//
// Complete frames (no content, or content already queued in full) never wait for anything
// but an open frame. All methods run on the connection's executor.
type frameWriter struct {
	c         reactor.Conn
	frames    []outFrame
	open      bool
	openID    protocol.StreamID
	openLeft  int // content bytes of the open frame not yet written
	queued    int // content bytes held in frames' data
	maxQueued int
	vec       [][]byte
	// broken is set once the wire is unusable: a write failed, or a frame that was already
	// partly written cannot be completed.
	broken error
}

func vecLen(p [][]byte) int {
	n := 0
	for _, b := range p {
		n += len(b)
	}
	return n
}

// begin accepts a frame whose head part is head (copied if it has to wait) and which
// announces contentLen bytes of content to come through data.
func (w *frameWriter) begin(id protocol.StreamID, head []byte, contentLen int) error {
	if w.broken != nil {
		return w.broken
	}
	if contentLen == 0 && !w.open {
		return w.write(head)
	}
	m := mcache.Malloc(len(head))
	copy(m, head)
	w.frames = append(w.frames, outFrame{id: id, head: m, remain: contentLen})
	return nil
}

// has reports whether the writer holds an incomplete frame for id.
func (w *frameWriter) has(id protocol.StreamID) bool {
	return (w.open && w.openID == id) || w.find(id) >= 0
}

// find returns the index of the incomplete held or queued frame for id, or -1.
func (w *frameWriter) find(id protocol.StreamID) int {
	for i := range w.frames {
		if w.frames[i].id == id && w.frames[i].remain > 0 {
			return i
		}
	}
	return -1
}

// data writes or queues content for id's frame; end says the producer has nothing more.
// done reports that the frame got all its announced content (it may still be queued). An
// error wrapping ErrContentLength or ErrQueueFull is a stream error: the frame had not
// reached the wire and was dropped. Any other error means the connection is unusable
// (w.broken is set).
func (w *frameWriter) data(id protocol.StreamID, p [][]byte, end bool) (done bool, err error) {
	if w.broken != nil {
		return false, w.broken
	}
	n := vecLen(p)
	if w.open && w.openID == id {
		if n > w.openLeft || (end && n < w.openLeft) {
			w.broken = fmt.Errorf("%w: %w: stream %d sent %d of %d bytes left",
				protocol.ErrConnection, ErrContentLength, id, n, w.openLeft)
			return false, w.broken
		}
		if n > 0 {
			if err := w.writev(p); err != nil {
				return false, err
			}
		}
		w.openLeft -= n
		if w.openLeft > 0 {
			return false, nil
		}
		w.open = false
		return true, w.promote()
	}
	i := w.find(id)
	if i < 0 {
		return false, fmt.Errorf("%w: no frame in progress for stream %d", ErrUnknownStream, id)
	}
	fr := &w.frames[i]
	if n > fr.remain || (end && n < fr.remain) {
		remain := fr.remain
		w.remove(i)
		return false, fmt.Errorf("%w: stream %d sent %d of %d bytes left", ErrContentLength, id, n, remain)
	}
	if !w.open {
		// The first content of a held frame: head and content leave in one writev.
		vec := append(w.vec[:0], fr.head)
		vec = append(vec, p...)
		left := fr.remain - n
		err := w.writev(vec)
		clear(vec)
		w.vec = vec[:0]
		w.remove(i)
		if err != nil {
			return false, err
		}
		if left > 0 {
			w.open, w.openID, w.openLeft = true, id, left
		}
		return left == 0, nil
	}
	if n > 0 && w.queued+n > w.maxQueued {
		w.remove(i)
		return false, fmt.Errorf("%w: %d bytes queued, limit %d", ErrQueueFull, w.queued, w.maxQueued)
	}
	if n > 0 {
		if fr.data == nil {
			fr.data = reactor.NewBuffer()
		}
		for _, b := range p {
			fr.data.AppendCopy(b)
		}
	}
	fr.remain -= n
	w.queued += n
	return fr.remain == 0, nil
}

// promote runs when no frame is open: it writes every complete queued frame and opens the
// first frame with queued content, all in one writev.
func (w *frameWriter) promote() error {
	vec := w.vec[:0]
	next := -1
	for i := range w.frames {
		fr := &w.frames[i]
		switch {
		case fr.remain == 0:
			vec = appendFrameVec(vec, fr)
		case fr.data != nil && next < 0:
			next = i
		}
	}
	if next >= 0 {
		vec = appendFrameVec(vec, &w.frames[next])
	}
	if len(vec) == 0 {
		return nil
	}
	err := w.writev(vec)
	clear(vec)
	w.vec = vec[:0]
	if next >= 0 {
		fr := &w.frames[next]
		w.open, w.openID, w.openLeft = true, fr.id, fr.remain
		fr.remain = 0 // written: removed below with the complete ones
	}
	out := w.frames[:0]
	for _, fr := range w.frames {
		if fr.remain == 0 {
			w.free(&fr)
			continue
		}
		out = append(out, fr)
	}
	clear(w.frames[len(out):])
	w.frames = out
	return err
}

func appendFrameVec(vec [][]byte, fr *outFrame) [][]byte {
	vec = append(vec, fr.head)
	if fr.data != nil {
		vec = append(vec, fr.data.Bytes()...)
	}
	return vec
}

// drop abandons id's frame. onWire reports that part of it was already written: the frame
// cannot be completed and the connection must be closed (the writer is broken from now on).
func (w *frameWriter) drop(id protocol.StreamID) (onWire bool) {
	if w.open && w.openID == id {
		if w.broken == nil {
			w.broken = fmt.Errorf("%w: stream %d abandoned in the middle of its frame", protocol.ErrConnection, id)
		}
		return true
	}
	if i := w.find(id); i >= 0 {
		w.remove(i)
	}
	return false
}

// flush writes a held head when it is the only frame in flight. Bolt peers cannot use a head
// without its content, and a written head commits the wire to its frame (everything else
// queues behind it), so heads are never flushed while other frames are pending.
func (w *frameWriter) flush() error {
	if w.broken != nil || w.open || len(w.frames) != 1 {
		return nil
	}
	fr := &w.frames[0]
	if fr.remain == 0 || fr.data != nil {
		return nil // cannot happen with nothing open; be safe
	}
	id, left := fr.id, fr.remain
	err := w.write(fr.head)
	w.remove(0)
	if err != nil {
		return err
	}
	w.open, w.openID, w.openLeft = true, id, left
	return nil
}

func (w *frameWriter) remove(i int) {
	w.free(&w.frames[i])
	copy(w.frames[i:], w.frames[i+1:])
	w.frames[len(w.frames)-1] = outFrame{}
	w.frames = w.frames[:len(w.frames)-1]
}

func (w *frameWriter) free(fr *outFrame) {
	if fr.head != nil {
		mcache.Free(fr.head)
		fr.head = nil
	}
	if fr.data != nil {
		w.queued -= fr.data.Len()
		fr.data.Release()
		fr.data = nil
	}
}

func (w *frameWriter) write(p []byte) error {
	if err := w.c.Write(p); err != nil {
		w.broken = fmt.Errorf("%w: bolt: write: %w", protocol.ErrConnection, err)
		return w.broken
	}
	return nil
}

func (w *frameWriter) writev(p [][]byte) error {
	if err := w.c.Writev(p); err != nil {
		w.broken = fmt.Errorf("%w: bolt: write: %w", protocol.ErrConnection, err)
		return w.broken
	}
	return nil
}
