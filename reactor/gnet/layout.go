package gnet

// This file is the only place that reaches into gnet v2.9.7's unexported structures. gnet
// offers no way to (a) stop reading a connection, (b) take back the bytes queued in a
// connection's outbound buffer, or (c) stop one listener without stopping its engine, so the
// backend locates three fields at run time through reflection over gnet's own types, checks
// their names, kinds and types against what v2.9.7 declares, and refuses to start (New returns
// ErrLayout) when anything differs. Nothing here writes into gnet's memory: it reads the epoll
// fd of a loop, hands out a pointer to a connection's elastic.Buffer (whose exported methods
// are then used), reads the listener fds of an engine and lists an engine's event loops.
//
// The fields, as declared in github.com/panjf2000/gnet/v2@v2.9.7:
//
//	gnet.Engine{eng *engine}
//	engine{listeners map[int]*listener; ingress *eventloop; eventLoops loadBalancer; ...}
//	*roundRobinLoadBalancer etc.{baseLoadBalancer{eventLoops []*eventloop; ...}; ...}
//	eventloop{poller *netpoll.Poller; connections connMatrix{connMap map[int]*conn}; ...}
//	netpoll.Poller{fd int; ...}                 // the epoll fd
//	conn{fd int; loop *eventloop; outboundBuffer elastic.Buffer; ...}
//
// layout_test.go checks the result against live objects (the epoll fd really holds the
// connection, the outbound view agrees with OutboundBuffered, the listener fd is the bound
// socket), so an upgrade of gnet that moves anything fails loudly in tests and at New.

import (
	"errors"
	"fmt"
	"reflect"
	"unsafe"

	gnetv2 "github.com/panjf2000/gnet/v2"
	"github.com/panjf2000/gnet/v2/pkg/buffer/elastic"
	"github.com/panjf2000/gnet/v2/pkg/netpoll"
)

// ErrLayout is returned by New when gnet's internal layout is not the one this backend was
// written against (github.com/panjf2000/gnet/v2 v2.9.7).
var ErrLayout = errors.New("reactor/gnet: gnet internal layout differs from v2.9.7")

// layout holds the offsets of the few gnet internals the backend reads.
type layout struct {
	engOff        uintptr      // gnet.Engine.eng
	listenersOff  uintptr      // engine.listeners
	listenersType reflect.Type // map[int]*listener
	lbOff         uintptr      // engine.eventLoops
	lbType        reflect.Type // loadBalancer (an interface)
	loopType      reflect.Type // *eventloop
	pollerOff     uintptr      // eventloop.poller
	pollerFDOff   uintptr      // netpoll.Poller.fd
	connType      reflect.Type // *conn
	outboundOff   uintptr      // conn.outboundBuffer
}

func layoutErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrLayout}, args...)...)
}

// field returns the named field of struct type t, checking its kind.
func field(t reflect.Type, name string, kind reflect.Kind) (reflect.StructField, error) {
	if t.Kind() != reflect.Struct {
		return reflect.StructField{}, layoutErr("%v is a %v, not a struct", t, t.Kind())
	}
	f, ok := t.FieldByName(name)
	if !ok || len(f.Index) != 1 {
		return reflect.StructField{}, layoutErr("%v has no field %q", t, name)
	}
	if f.Type.Kind() != kind {
		return reflect.StructField{}, layoutErr("%v.%s is a %v, want %v", t, name, f.Type.Kind(), kind)
	}
	return f, nil
}

// probeLayout derives the layout from gnet's types, starting at the exported gnet.Engine.
func probeLayout() (*layout, error) {
	var lay layout

	engF, err := field(reflect.TypeOf(gnetv2.Engine{}), "eng", reflect.Pointer)
	if err != nil {
		return nil, err
	}
	lay.engOff = engF.Offset
	engineT := engF.Type.Elem()

	lnF, err := field(engineT, "listeners", reflect.Map)
	if err != nil {
		return nil, err
	}
	if lnF.Type.Key().Kind() != reflect.Int || lnF.Type.Elem().Kind() != reflect.Pointer {
		return nil, layoutErr("engine.listeners is %v, want map[int]*listener", lnF.Type)
	}
	lay.listenersOff, lay.listenersType = lnF.Offset, lnF.Type

	lbF, err := field(engineT, "eventLoops", reflect.Interface)
	if err != nil {
		return nil, err
	}
	lay.lbOff, lay.lbType = lbF.Offset, lbF.Type

	inF, err := field(engineT, "ingress", reflect.Pointer)
	if err != nil {
		return nil, err
	}
	lay.loopType = inF.Type
	loopT := inF.Type.Elem()

	pF, err := field(loopT, "poller", reflect.Pointer)
	if err != nil {
		return nil, err
	}
	if pF.Type != reflect.TypeOf((*netpoll.Poller)(nil)) {
		return nil, layoutErr("eventloop.poller is %v, want *netpoll.Poller", pF.Type)
	}
	lay.pollerOff = pF.Offset

	fdF, err := field(reflect.TypeOf(netpoll.Poller{}), "fd", reflect.Int)
	if err != nil {
		return nil, err
	}
	lay.pollerFDOff = fdF.Offset

	cmF, err := field(loopT, "connections", reflect.Struct)
	if err != nil {
		return nil, err
	}
	// The default build keeps connMap map[int]*conn; the gc_opt build a table [N][]*conn.
	if mF, err := field(cmF.Type, "connMap", reflect.Map); err == nil {
		lay.connType = mF.Type.Elem()
	} else if tF, err := field(cmF.Type, "table", reflect.Array); err == nil &&
		tF.Type.Elem().Kind() == reflect.Slice {
		lay.connType = tF.Type.Elem().Elem()
	} else {
		return nil, layoutErr("connMatrix has neither connMap nor table")
	}
	if lay.connType.Kind() != reflect.Pointer || lay.connType.Elem().Kind() != reflect.Struct {
		return nil, layoutErr("connMatrix holds %v, want *conn", lay.connType)
	}
	connT := lay.connType.Elem()

	if _, err := field(connT, "fd", reflect.Int); err != nil {
		return nil, err
	}
	lpF, err := field(connT, "loop", reflect.Pointer)
	if err != nil {
		return nil, err
	}
	if lpF.Type != lay.loopType {
		return nil, layoutErr("conn.loop is %v, want %v", lpF.Type, lay.loopType)
	}
	obF, err := field(connT, "outboundBuffer", reflect.Struct)
	if err != nil {
		return nil, err
	}
	if obF.Type != reflect.TypeOf(elastic.Buffer{}) {
		return nil, layoutErr("conn.outboundBuffer is %v, want elastic.Buffer", obF.Type)
	}
	lay.outboundOff = obF.Offset
	return &lay, nil
}

// epollFD returns the epoll instance of the loop el.
func (lay *layout) epollFD(el gnetv2.EventLoop) (int, error) {
	v := reflect.ValueOf(el)
	if !v.IsValid() || v.Type() != lay.loopType || v.IsNil() {
		return -1, layoutErr("event loop is %T, want %v", el, lay.loopType)
	}
	p := *(**netpoll.Poller)(unsafe.Add(v.UnsafePointer(), lay.pollerOff))
	if p == nil {
		return -1, layoutErr("event loop has no poller")
	}
	return *(*int)(unsafe.Add(unsafe.Pointer(p), lay.pollerFDOff)), nil
}

// outbound returns gc's outbound buffer. Loop-only, like every use of the buffer.
func (lay *layout) outbound(gc gnetv2.Conn) (*elastic.Buffer, error) {
	v := reflect.ValueOf(gc)
	if !v.IsValid() || v.Type() != lay.connType || v.IsNil() {
		return nil, layoutErr("connection is %T, want %v", gc, lay.connType)
	}
	return (*elastic.Buffer)(unsafe.Add(v.UnsafePointer(), lay.outboundOff)), nil
}

// listenerFDs returns the listening sockets of a server engine. engine.listeners is written
// once before the engine starts and only read afterwards.
func (lay *layout) listenerFDs(e gnetv2.Engine) ([]int, error) {
	ep := *(*unsafe.Pointer)(unsafe.Add(unsafe.Pointer(&e), lay.engOff))
	if ep == nil {
		return nil, layoutErr("engine is empty")
	}
	m := reflect.NewAt(lay.listenersType, unsafe.Add(ep, lay.listenersOff)).Elem()
	fds := make([]int, 0, m.Len())
	for _, k := range m.MapKeys() {
		fds = append(fds, int(k.Int()))
	}
	return fds, nil
}

// eventLoops lists an engine's event loops in index order. It must run after gnet's
// engine.start registered them (a goroutine gnet started afterwards, or after Client.Start).
func (lay *layout) eventLoops(e gnetv2.Engine) ([]gnetv2.EventLoop, error) {
	ep := *(*unsafe.Pointer)(unsafe.Add(unsafe.Pointer(&e), lay.engOff))
	if ep == nil {
		return nil, layoutErr("engine is empty")
	}
	lb := reflect.NewAt(lay.lbType, unsafe.Add(ep, lay.lbOff)).Elem()
	if lb.IsNil() || lb.Elem().Kind() != reflect.Pointer || lb.Elem().Elem().Kind() != reflect.Struct {
		return nil, layoutErr("engine.eventLoops is %v", lb.Type())
	}
	s := lb.Elem().Elem().FieldByName("eventLoops")
	if !s.IsValid() || s.Kind() != reflect.Slice || s.Type().Elem() != lay.loopType {
		return nil, layoutErr("%v has no eventLoops []%v", lb.Elem().Type(), lay.loopType)
	}
	els := make([]gnetv2.EventLoop, 0, s.Len())
	for i := range s.Len() {
		p := s.Index(i).UnsafePointer()
		el, ok := reflect.NewAt(lay.loopType.Elem(), p).Interface().(gnetv2.EventLoop)
		if !ok || p == nil {
			return nil, layoutErr("%v is not a gnet.EventLoop", lay.loopType)
		}
		els = append(els, el)
	}
	return els, nil
}
