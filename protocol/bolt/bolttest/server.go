package bolttest

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strait-proxy/strait/protocol/bolt"
)

// Handler serves one request or oneway request. For a request, the returned Message is the
// response (its ID and Kind are set by the server; a zero Codec means the request's codec);
// nil sends nothing, which a client sees as a timeout. For a oneway request the result is
// ignored. Handlers run concurrently.
type Handler func(req *Message) *Message

// ServerOptions configure a Server. The zero value is usable.
type ServerOptions struct {
	// Delay, if set, is how long to wait before running the handler for a request, so tests
	// can make responses leave out of order.
	Delay func(req *Message) time.Duration
	// IgnoreHeartbeats makes the server leave heartbeats unanswered.
	IgnoreHeartbeats bool
	// MaxInFlight bounds the requests a connection may have in its handlers at once; past
	// it requests are answered with StatusServerThreadpoolBusy (and oneways dropped), as a
	// sofa-bolt server does when its pool is full. Default 1024.
	MaxInFlight int
	// Limits bound the frames the server accepts; past them the connection is closed.
	Limits bolt.Limits
}

// Server is a Bolt server: one reader goroutine per connection and one goroutine per
// request in flight.
type Server struct {
	h   Handler
	opt ServerOptions

	heartbeats atomic.Int64
	requests   atomic.Int64
	busy       atomic.Int64

	mu    sync.Mutex
	lns   map[net.Listener]struct{}
	conns map[net.Conn]struct{}
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

// NewServer returns a server that runs h for every request.
func NewServer(h Handler, opt ServerOptions) *Server {
	if opt.MaxInFlight <= 0 {
		opt.MaxInFlight = 1024
	}
	return &Server{h: h, opt: opt, lns: map[net.Listener]struct{}{}, conns: map[net.Conn]struct{}{}, done: make(chan struct{})}
}

// Listen binds addr (e.g. "127.0.0.1:0") and serves it in the background.
func Listen(addr string, h Handler, opt ServerOptions) (*Server, net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	s := NewServer(h, opt)
	started := make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		close(started)
		_ = s.Serve(ln)
	}()
	<-started
	return s, ln.Addr(), nil
}

// Serve accepts connections on ln until ln fails or the server is closed. It returns nil after
// Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	select {
	case <-s.done:
		s.mu.Unlock()
		ln.Close()
		return nil
	default:
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	for {
		nc, err := ln.Accept()
		if err != nil {
			select {
			case <-s.done:
				return nil
			default:
				return err
			}
		}
		s.mu.Lock()
		select {
		case <-s.done:
			s.mu.Unlock()
			nc.Close()
			return nil
		default:
		}
		s.conns[nc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(nc)
	}
}

// Heartbeats is the number of heartbeats received.
func (s *Server) Heartbeats() int64 { return s.heartbeats.Load() }

// Requests is the number of requests and oneway requests received.
func (s *Server) Requests() int64 { return s.requests.Load() }

// Busy is the number of requests answered with StatusServerThreadpoolBusy or dropped.
func (s *Server) Busy() int64 { return s.busy.Load() }

// Close stops the listeners, closes every connection, abandons delayed requests and waits
// for all the server's goroutines.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.mu.Lock()
		close(s.done)
		for ln := range s.lns {
			ln.Close()
		}
		for nc := range s.conns {
			nc.Close()
		}
		s.mu.Unlock()
	})
	s.wg.Wait()
	return nil
}

func (s *Server) serveConn(nc net.Conn) {
	defer s.wg.Done()
	c := &conn{nc: nc}
	slots := make(chan struct{}, s.opt.MaxInFlight)
	gone := make(chan struct{}) // closed when this connection's reader stops
	var inflight sync.WaitGroup
	defer func() {
		nc.Close()
		close(gone)
		inflight.Wait()
		s.mu.Lock()
		delete(s.conns, nc)
		s.mu.Unlock()
	}()
	fr := newFrameReader(nc, s.opt.Limits)
	var f bolt.Frame
	for {
		err := fr.next(&f)
		if bolt.IsFatal(err) {
			return
		}
		if errors.Is(err, bolt.ErrBadHeader) {
			if f.ExpectsResponse() && c.write(bolt.AppendStatusResponse(nil, f.RequestID, f.Codec, bolt.StatusCodecException)) != nil {
				return
			}
			continue
		}
		switch f.Kind() {
		case bolt.KindHeartbeat:
			s.heartbeats.Add(1)
			if !s.opt.IgnoreHeartbeats && c.write(bolt.AppendHeartbeatAck(nil, f.RequestID)) != nil {
				return
			}
		case bolt.KindRequest, bolt.KindOneway:
			s.requests.Add(1)
			select {
			case slots <- struct{}{}:
			default:
				s.busy.Add(1)
				if f.Kind() == bolt.KindRequest &&
					c.write(bolt.AppendStatusResponse(nil, f.RequestID, f.Codec, bolt.StatusServerThreadpoolBusy)) != nil {
					return
				}
				continue
			}
			req := messageFrom(&f)
			inflight.Add(1)
			go func() {
				defer inflight.Done()
				defer func() { <-slots }()
				s.handle(c, req, gone)
			}()
		default:
			// Responses and heartbeat acks: this server sends no requests of its own.
		}
	}
}

func (s *Server) handle(c *conn, req *Message, gone <-chan struct{}) {
	if s.opt.Delay != nil {
		if d := s.opt.Delay(req); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-s.done:
				t.Stop()
				return
			case <-gone:
				t.Stop()
				return
			}
		}
	}
	resp := s.h(req)
	if req.Kind != bolt.KindRequest || resp == nil {
		return
	}
	m := *resp
	m.ID = req.ID
	if m.Codec == 0 {
		m.Codec = req.Codec
	}
	// A write error means the connection is gone; its reader notices and cleans up.
	_ = c.writeMessage(&m, bolt.TypeResponse, bolt.CmdResponse, 0)
}
