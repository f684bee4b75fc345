package bolttest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strait-proxy/strait/protocol/bolt"
)

// ClientOptions configure a Client. The zero value is usable.
type ClientOptions struct {
	// Timeout is the per-call timeout when the Message sets none. Default 5s.
	Timeout time.Duration
	// Limits bound the frames the client accepts.
	Limits bolt.Limits
}

// DefaultCallTimeout is ClientOptions.Timeout's default.
const DefaultCallTimeout = 5 * time.Second

type result struct {
	m   *Message
	err error
}

// Client is a multiplexing Bolt client on one connection. Its methods are safe for concurrent
// use; responses are matched to calls by request id, in whatever order they arrive.
type Client struct {
	c   conn
	opt ClientOptions

	nextID    atomic.Uint32
	unmatched atomic.Int64

	mu      sync.Mutex
	pending map[uint32]chan result
	err     error // set once the read loop stopped
	done    chan struct{}
}

// Dial connects to addr and returns a client on the new connection.
func Dial(addr string, opt ClientOptions) (*Client, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return NewClient(nc, opt), nil
}

// NewClient runs a client on nc, which it owns from now on, and starts its reader.
func NewClient(nc net.Conn, opt ClientOptions) *Client {
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultCallTimeout
	}
	cl := &Client{c: conn{nc: nc}, opt: opt, pending: make(map[uint32]chan result), done: make(chan struct{})}
	go cl.readLoop()
	return cl
}

// Call sends req as a request and waits for its response. The wait ends at the earlier of
// ctx's deadline and the call timeout (req.Timeout, else the client default), which is also
// the timeout written on the wire. A timeout returns an error wrapping ErrTimeout; the
// response, if it comes later, is counted by Unmatched and dropped. A context already done
// sends nothing. A response whose status
// is not success is returned as a Message, not an error.
func (cl *Client) Call(ctx context.Context, req *Message) (*Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m := *req
	if m.Codec == 0 {
		m.Codec = bolt.CodecHessian2
	}
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = cl.opt.Timeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	ms := time.Until(deadline).Milliseconds()
	ms = max(1, min(ms, 1<<31-1))

	m.ID = cl.nextID.Add(1)
	ch, err := cl.register(m.ID)
	if err != nil {
		return nil, err
	}
	if err := cl.c.writeMessage(&m, bolt.TypeRequest, bolt.CmdRequest, int32(ms)); err != nil {
		cl.unregister(m.ID)
		return nil, fmt.Errorf("bolttest: send request %d: %w", m.ID, err)
	}
	return cl.wait(ctx, m.ID, ch)
}

// Oneway sends req as a oneway request; no response is expected.
func (cl *Client) Oneway(req *Message) error {
	m := *req
	if m.Codec == 0 {
		m.Codec = bolt.CodecHessian2
	}
	m.ID = cl.nextID.Add(1)
	if err := cl.c.writeMessage(&m, bolt.TypeOneway, bolt.CmdRequest, -1); err != nil {
		return fmt.Errorf("bolttest: send oneway %d: %w", m.ID, err)
	}
	return nil
}

// Heartbeat sends a heartbeat and waits for its ack, at most until ctx ends or the client
// default timeout passes.
func (cl *Client) Heartbeat(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cl.opt.Timeout)
	defer cancel()
	id := cl.nextID.Add(1)
	ch, err := cl.register(id)
	if err != nil {
		return err
	}
	if err := cl.c.write(bolt.AppendHeartbeat(nil, id)); err != nil {
		cl.unregister(id)
		return fmt.Errorf("bolttest: send heartbeat %d: %w", id, err)
	}
	m, err := cl.wait(ctx, id, ch)
	if err != nil {
		return err
	}
	if m.Kind != bolt.KindHeartbeatAck {
		return fmt.Errorf("bolttest: heartbeat %d answered with a %v", id, m.Kind)
	}
	return nil
}

// Unmatched counts responses that matched no waiting call: late answers to timed-out calls,
// or answers the peer made up.
func (cl *Client) Unmatched() int64 { return cl.unmatched.Load() }

// Done is closed when the client's connection is gone.
func (cl *Client) Done() <-chan struct{} { return cl.done }

// Err is why the connection is gone (nil while it is up).
func (cl *Client) Err() error {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.err
}

// Close closes the connection, fails pending calls with ErrClosed and waits for the reader.
func (cl *Client) Close() error {
	err := cl.c.nc.Close()
	<-cl.done
	return err
}

func (cl *Client) register(id uint32) (chan result, error) {
	ch := make(chan result, 1)
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.err != nil {
		return nil, cl.err
	}
	cl.pending[id] = ch
	return ch, nil
}

func (cl *Client) unregister(id uint32) {
	cl.mu.Lock()
	delete(cl.pending, id)
	cl.mu.Unlock()
}

func (cl *Client) wait(ctx context.Context, id uint32, ch chan result) (*Message, error) {
	select {
	case r := <-ch:
		return r.m, r.err
	case <-ctx.Done():
		cl.unregister(id)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("%w: request %d", ErrTimeout, id)
		}
		return nil, ctx.Err()
	}
}

// take removes and returns the waiter for id, if any.
func (cl *Client) take(id uint32) (chan result, bool) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	ch, ok := cl.pending[id]
	delete(cl.pending, id)
	return ch, ok
}

func (cl *Client) readLoop() {
	fr := newFrameReader(cl.c.nc, cl.opt.Limits)
	var f bolt.Frame
	var err error
	for {
		if err = fr.next(&f); bolt.IsFatal(err) {
			break
		}
		if err = cl.dispatch(&f, err); err != nil {
			break
		}
	}
	cl.c.nc.Close()
	cl.mu.Lock()
	cl.err = fmt.Errorf("%w: %v", ErrClosed, err)
	pending := cl.pending
	cl.pending = nil
	cl.mu.Unlock()
	for _, ch := range pending {
		ch <- result{err: cl.err}
	}
	close(cl.done)
}

// dispatch handles one decoded frame; decodeErr is nil or a stream error (ErrBadHeader). A
// returned error ends the connection.
func (cl *Client) dispatch(f *bolt.Frame, decodeErr error) error {
	switch f.Kind() {
	case bolt.KindResponse, bolt.KindHeartbeatAck:
		ch, ok := cl.take(f.RequestID)
		switch {
		case !ok:
			cl.unmatched.Add(1)
		case decodeErr != nil: // the call fails, the connection goes on
			ch <- result{err: fmt.Errorf("bolttest: response %d: %w", f.RequestID, decodeErr)}
		default:
			ch <- result{m: messageFrom(f)}
		}
	case bolt.KindHeartbeat: // sofa-bolt's heartbeat processor answers on either side
		return cl.c.write(bolt.AppendHeartbeatAck(nil, f.RequestID))
	default:
		// A server sends no requests to a Bolt client; ignore them.
	}
	return nil
}
