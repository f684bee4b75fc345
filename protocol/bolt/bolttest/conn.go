// Package bolttest is a small but real Bolt v1 client and server over net.Conn, for
// end-to-end tests of Strait's Bolt path: the client multiplexes concurrent calls on one
// connection by request id, supports oneway calls, heartbeats and per-call timeouts; the server
// runs a handler per request, can delay each one (so responses go out of order), answers
// heartbeats and sheds load with SERVER_THREADPOOL_BUSY past a per-connection bound.
//
// Who may call it: tests anywhere in Strait. It is built on the protocol/bolt wire layer but
// favours clarity over speed (messages are copied into owned values); it is not a production
// client.
package bolttest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/strait-proxy/strait/protocol/bolt"
)

// Errors returned by Client methods, wrapped with %w.
var (
	// ErrTimeout means a call or heartbeat got no answer within its timeout.
	ErrTimeout = errors.New("bolttest: timed out")
	// ErrClosed means the client's connection is closed (locally or by the peer).
	ErrClosed = errors.New("bolttest: connection closed")
)

// writeTimeout bounds every write so a stuck peer fails a test instead of hanging it.
const writeTimeout = 10 * time.Second

// Message is one Bolt command with owned fields: what a Client sends and receives, and what a
// server Handler gets and returns.
type Message struct {
	// ID is the request id. Set by the Client on send and by the Server on replies.
	ID uint32
	// Kind is set on received messages.
	Kind bolt.Kind
	// Codec is the serializer id; 0 sends bolt.CodecHessian2 (requests) or the request's
	// codec (replies).
	Codec byte
	// Timeout on a request: the per-call timeout when sending (0 means the client default),
	// the wire timeout when received (negative: none).
	Timeout time.Duration
	// Status of a response.
	Status bolt.Status
	// Class is the content's class name.
	Class string
	// Header is the header map; a null value is received as "".
	Header map[string]string
	// Content is the payload.
	Content []byte
}

// messageFrom copies a decoded frame into an owned Message.
func messageFrom(f *bolt.Frame) *Message {
	m := &Message{
		ID:      f.RequestID,
		Kind:    f.Kind(),
		Codec:   f.Codec,
		Status:  f.Status,
		Class:   string(f.Class),
		Content: bytes.Clone(f.Content),
	}
	if f.IsRequest() {
		m.Timeout = time.Duration(f.Timeout) * time.Millisecond
	}
	if f.Header.Len() > 0 {
		m.Header = make(map[string]string)
		f.Header.Range(func(k, v []byte) bool {
			m.Header[string(k)] = string(v)
			return true
		})
	}
	return m
}

// conn is a net.Conn with a serialized, vectored writer.
type conn struct {
	nc  net.Conn
	wmu sync.Mutex
}

// writeMessage encodes m as a frame of the given type and code: head, class and header in one
// buffer, content as a second vector so it is not copied.
func (c *conn) writeMessage(m *Message, typ byte, cmd uint16, timeout int32) error {
	var hb []byte
	for k, v := range m.Header {
		hb = bolt.AppendHeader(hb, k, v)
	}
	h, err := bolt.ParseHeader(hb)
	if err != nil {
		return err
	}
	f := bolt.Frame{
		Type: typ, CmdCode: cmd, Version: bolt.CommandVersion, RequestID: m.ID, Codec: m.Codec,
		Timeout: timeout, Status: m.Status, Class: []byte(m.Class), Header: h,
	}
	head, err := bolt.AppendHead(make([]byte, 0, bolt.RequestHeadLen+len(m.Class)+len(hb)), &f, len(m.Content))
	if err != nil {
		return err
	}
	return c.write(head, m.Content)
}

// write sends the vectors with one writev, under the write lock.
func (c *conn) write(vecs ...[]byte) error {
	bufs := net.Buffers(vecs)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.nc.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return err
	}
	_, err := bufs.WriteTo(c.nc)
	return err
}

// frameReader reads frames from a net.Conn into a growing buffer with bolt.Decode, reading
// exactly as far as Decode's need-more answers ask.
type frameReader struct {
	nc      net.Conn
	lim     bolt.Limits
	buf     []byte
	r, w    int
	readErr error
}

func newFrameReader(nc net.Conn, lim bolt.Limits) *frameReader {
	return &frameReader{nc: nc, lim: lim, buf: make([]byte, 16<<10)}
}

// next decodes the next frame into f; its slices are valid until the next call. Errors are
// Decode's (an ErrBadHeader frame is consumed and may be followed by more) or the read's.
func (fr *frameReader) next(f *bolt.Frame) error {
	for {
		n, err := bolt.Decode(fr.buf[fr.r:fr.w], f, fr.lim)
		if err == nil || (err != bolt.ErrNeedMore && !bolt.IsFatal(err)) {
			fr.r += n
			return err
		}
		if err != bolt.ErrNeedMore {
			return err
		}
		if fr.readErr != nil {
			return fr.readErr
		}
		if len(fr.buf)-fr.r < n { // make room for n bytes from r
			if fr.r > 0 {
				copy(fr.buf, fr.buf[fr.r:fr.w])
				fr.w -= fr.r
				fr.r = 0
			}
			if len(fr.buf) < n {
				nb := make([]byte, n)
				copy(nb, fr.buf[:fr.w])
				fr.buf = nb
			}
		}
		m, err := fr.nc.Read(fr.buf[fr.w:])
		fr.w += m
		if err != nil {
			fr.readErr = fmt.Errorf("read: %w", err)
		}
	}
}
