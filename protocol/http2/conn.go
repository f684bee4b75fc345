package http2

import (
	"fmt"
	"io"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/reactor"
)

// conn is the state both codecs share: one HTTP/2 connection seen from one end. The server
// and client codecs embed it; methods that differ by side test c.server.
//
// Frames are read with x/net's Framer from a reader over exactly one frame's bytes of the
// read view (the frame is decoded only once it is whole, see decodeFrames), except DATA,
// whose payload is offered to the sink in place. Frames are written with the same Framer
// into the outbound buffer (out), except DATA, whose payload slices are referenced; out is
// written with one Write or Writev per flush.
type conn struct {
	cfg     *Config
	c       reactor.Conn
	server  bool
	srvSink protocol.Sink // server: the sink of every stream

	fr   *http2.Framer
	src  frameSrc
	out  outbuf
	hdec *hpack.Decoder
	henc *hpack.Encoder
	hbuf hpackBuf
	enc  encState
	hb   headerAssembly

	settingFn func(http2.Setting) error
	emitFn    func(hpack.HeaderField)

	// Connection state.
	prefaceDone   bool // server: the client preface was read
	gotSettings   bool // the peer's first SETTINGS frame arrived
	settingsAcked bool // the peer acknowledged our SETTINGS
	err           error
	writeErr      error
	inDecode      bool
	flushSeen     bool // Flush is being called by the driver: no Exec fallback
	flushQueued   bool
	flushFn       func()
	fq            protocol.FlushQueue // the driver's (SetFlushQueue); nil: write at once
	fqPending     bool                // queued in fq, not flushed by it yet
	closeWhenDone bool                // close the connection once out is flushed
	halfClosed    bool                // server: our FIN is sent; what the client still sends is read and dropped

	// The peer's settings.
	peerMaxFrame   uint32
	peerInitWindow int64
	peerMaxStreams uint32

	// Connection flow control.
	sendWindow int64 // bytes we may still send
	recvWindow int64 // bytes the peer may still send
	recvCredit int64 // bytes received and not yet returned with WINDOW_UPDATE

	streams    map[uint32]*stream
	handles    map[protocol.StreamID]*stream // client: streams by handle
	lastPeerID uint32                        // server: highest stream id the client opened
	nextID     uint32                        // client: next stream id
	nextHandle protocol.StreamID             // client
	ring       resetRing

	goawaySent bool
	goawayID   uint32 // last stream id we announced in GOAWAY
	draining   bool
	goawayRecv bool
	peerLastID uint32

	// Send queues (bytes beyond the peer's window).
	sendQ    []*stream
	queued   int
	writable []*stream
	scratch  []*stream

	// Hardening counters.
	streamsOpened  int
	premature      int
	emptyFrames    int
	priorityFrames int
	windowUpdates  int
	dataFramesSent int
	ctrlQueued     int
	framesQueued   int
	lastOutbound   int
	settingsRate   rate
	pingRate       rate
}

// stream is one stream's state on either side.
type stream struct {
	id     uint32            // wire id (client: 0 until the head is encoded)
	handle protocol.StreamID // the id the sink and the Encode calls use
	sink   protocol.Sink
	flow   FlowSink // non-nil: the sink returns credit with Consume
	known  bool     // the sink has heard of the stream: it gets OnReset when it dies
	closed bool     // removed from the connection

	// Receive side.
	recvOpen   bool // the peer may still send on the stream
	gotHead    bool // the peer's final head arrived
	recvWindow int64
	recvCredit int64
	owed       int64 // bytes offered to a FlowSink and not yet consumed
	recvCL     int64 // content-length announced by the peer, -1 if none
	recvN      int64
	interim    int

	// Send side.
	send       sendState
	sendWindow int64
	sendCL     int64 // content-length we announced, -1 if none
	sentN      int64
	noBody     bool // response to HEAD, 204, 304: body bytes are dropped
	isHead     bool // server: the request method is HEAD

	q         []*reactor.Buffer // bytes waiting for the peer's window (owned copies)
	qLen      int
	qTrailers []hpack.HeaderField // trailers waiting behind q (owned strings)
	hasQTrail bool
	inSendQ   bool
	congested bool

	opened time.Time
}

type sendState uint8

const (
	sendIdle   sendState = iota // no head sent
	sendOpen                    // head sent, body may follow
	sendEnding                  // END_STREAM queued behind bytes waiting for the window
	sendClosed                  // END_STREAM written (or the stream was reset)
)

// frameSrc is the Framer's reader: the bytes of exactly one frame.
type frameSrc struct{ p []byte }

func (s *frameSrc) Read(b []byte) (int, error) {
	if len(s.p) == 0 {
		return 0, io.EOF
	}
	n := copy(b, s.p)
	s.p = s.p[n:]
	return n, nil
}

// resetRing remembers the streams this end reset most recently: frames the peer sent
// before it saw the RST_STREAM are ignored for those (RFC 9113 5.1), not answered with
// another reset.
type resetRing struct {
	ids []uint32 // allocated on the first reset
	pos int
}

const resetRingSize = 128

func (r *resetRing) add(id uint32) {
	if r.ids == nil {
		r.ids = make([]uint32, resetRingSize)
	}
	r.ids[r.pos] = id
	r.pos = (r.pos + 1) % len(r.ids)
}

func (r *resetRing) has(id uint32) bool {
	for _, v := range r.ids {
		if v == id {
			return true
		}
	}
	return false
}

// rate counts events per one-second window.
type rate struct {
	start time.Time
	n     int
}

func (r *rate) allow(limit int) bool {
	now := time.Now()
	if now.Sub(r.start) >= time.Second {
		r.start, r.n = now, 0
	}
	r.n++
	return r.n <= limit
}

func (c *conn) init(rc reactor.Conn, cfg *Config, server bool) {
	c.cfg, c.c, c.server = cfg, rc, server
	c.fr = http2.NewFramer(&c.out, &c.src)
	c.fr.SetMaxReadFrameSize(cfg.MaxFrameSize)
	c.emitFn = c.emitField
	c.settingFn = c.applySetting
	c.flushFn = c.flushQueuedFn
	// The peer's encoder may use the default table size until it acknowledged ours.
	c.hdec = hpack.NewDecoder(DefaultHeaderTableSize, c.emitFn)
	c.hdec.SetMaxStringLength(int(cfg.MaxHeaderListSize))
	c.henc = hpack.NewEncoder(&c.hbuf)
	c.enc.fn = c.encodeField
	c.enc.collect = c.collectTrailer
	c.peerMaxFrame = minFrameSize
	c.peerInitWindow = initialWindow
	c.peerMaxStreams = cfg.MaxConcurrentStreams
	c.sendWindow = initialWindow
	c.recvWindow = int64(cfg.InitialConnWindow)
	c.streams = make(map[uint32]*stream)
	c.nextID = 1
}

func (c *conn) sink() protocol.Sink { return c.srvSink }

// writeSettings queues this end's SETTINGS and the connection window increase.
func (c *conn) writeSettings() {
	cfg := c.cfg
	s := [6]http2.Setting{
		{ID: http2.SettingInitialWindowSize, Val: cfg.InitialStreamWindow},
		{ID: http2.SettingMaxFrameSize, Val: cfg.MaxFrameSize},
		{ID: http2.SettingMaxHeaderListSize, Val: cfg.MaxHeaderListSize},
	}
	n := 3
	if c.server {
		s[n] = http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: cfg.MaxConcurrentStreams}
	} else {
		s[n] = http2.Setting{ID: http2.SettingEnablePush, Val: 0}
	}
	n++
	if cfg.HeaderTableSize != DefaultHeaderTableSize {
		s[n] = http2.Setting{ID: http2.SettingHeaderTableSize, Val: cfg.HeaderTableSize}
		n++
	}
	_ = c.fr.WriteSettings(s[:n]...)
	if inc := cfg.InitialConnWindow - initialWindow; inc > 0 {
		_ = c.fr.WriteWindowUpdate(0, inc)
	}
}

// recvInit is the receive window of a new stream: our advertised initial window, or the
// protocol default while the peer has not acknowledged our SETTINGS (it may still use it).
func (c *conn) recvInit() int64 {
	if c.settingsAcked {
		return int64(c.cfg.InitialStreamWindow)
	}
	return max(int64(c.cfg.InitialStreamWindow), initialWindow)
}

// --- decoding ------------------------------------------------------------------------------

// decode is Decode for both sides.
func (c *conn) decode(in reactor.View) error {
	if c.err != nil {
		in.Skip(in.Len())
		return c.err
	}
	if c.halfClosed {
		in.Skip(in.Len())
		return nil
	}
	c.inDecode = true
	// Frames generated in answer to the peer are counted while it does not read them: the
	// counts restart once the connection's outbound queue emptied or shrank since the last
	// read (the transport's MaxWriteBuffer bounds a peer that reads a trickle).
	if ob := c.c.Outbound(); ob == 0 || ob < c.lastOutbound {
		c.ctrlQueued, c.framesQueued = 0, 0
	}
	c.decodeFrames(in)
	if c.err == nil && c.framesQueued > c.cfg.MaxOutboundFramesQueued {
		c.fail(http2.ErrCodeEnhanceYourCalm, ErrFlood, "outbound frames queued while the peer does not read")
	}
	c.inDecode = false
	c.notifyWritable()
	c.flush()
	c.lastOutbound = c.c.Outbound()
	return c.err
}

// decodeFrames consumes every whole frame at the front of in. A frame is taken only when all
// its bytes are in the view: the 9-byte header gives the length, bounded by MaxFrameSize.
func (c *conn) decodeFrames(in reactor.View) {
	if c.server && !c.prefaceDone {
		n := min(in.Len(), len(preface))
		if string(in.Peek(n)) != preface[:n] {
			c.fail(http2.ErrCodeProtocol, ErrPreface, "invalid client preface")
			in.Skip(in.Len())
			return
		}
		if n < len(preface) {
			return
		}
		in.Skip(n)
		c.prefaceDone = true
	}
	for c.err == nil && in.Len() >= frameHeaderLen {
		h := in.Peek(frameHeaderLen)
		length := int(h[0])<<16 | int(h[1])<<8 | int(h[2])
		typ := http2.FrameType(h[3])
		if length > int(c.cfg.MaxFrameSize) {
			c.fail(http2.ErrCodeFrameSize, ErrFrameSize, "frame larger than SETTINGS_MAX_FRAME_SIZE")
			return
		}
		if in.Len() < frameHeaderLen+length {
			return
		}
		if !c.gotSettings && (typ != http2.FrameSettings || http2.Flags(h[4])&http2.FlagSettingsAck != 0) {
			c.fail(http2.ErrCodeProtocol, ErrPreface, "first frame is not SETTINGS")
			return
		}
		if typ == http2.FrameData {
			c.src.p = h
			fh, err := c.fr.ReadFrameHeader()
			if err != nil {
				c.frameError(err, typ)
				return
			}
			c.onData(in, fh)
			continue
		}
		c.src.p = in.Peek(frameHeaderLen + length)
		fh, err := c.fr.ReadFrameHeader()
		if err != nil {
			c.frameError(err, typ)
			return
		}
		f, err := c.fr.ReadFrameForHeader(fh)
		in.Skip(frameHeaderLen + length)
		if err != nil {
			c.frameError(err, typ)
			continue
		}
		c.onFrame(f)
	}
}

const frameHeaderLen = 9

// frameError handles an error the Framer reported for a frame.
func (c *conn) frameError(err error, typ http2.FrameType) {
	switch e := err.(type) {
	case http2.ConnectionError:
		code := http2.ErrCode(e)
		reason := "invalid frame"
		if d := c.fr.ErrorDetail(); d != nil {
			reason = d.Error()
		}
		c.fail(code, sentinelFor(code), reason)
	case http2.StreamError:
		if typ == http2.FrameHeaders || typ == http2.FrameContinuation {
			// The header block was not decoded: HPACK state is lost for the connection.
			c.fail(e.Code, sentinelFor(e.Code), "invalid HEADERS frame")
			return
		}
		c.streamErrorID(e.StreamID, e.Code, sentinelFor(e.Code))
	default:
		c.fail(http2.ErrCodeFrameSize, ErrFrameSize, fmt.Sprintf("%v frame too short", typ))
	}
}

func (c *conn) onFrame(f http2.Frame) {
	switch f := f.(type) {
	case *http2.SettingsFrame:
		c.onSettings(f)
	case *http2.HeadersFrame:
		c.onHeaders(f)
	case *http2.ContinuationFrame:
		c.onContinuation(f)
	case *http2.WindowUpdateFrame:
		c.onWindowUpdate(f)
	case *http2.RSTStreamFrame:
		c.onRSTStream(f)
	case *http2.PingFrame:
		c.onPing(f)
	case *http2.GoAwayFrame:
		c.onGoAway(f)
	case *http2.PriorityFrame:
		c.onPriority(f)
	case *http2.PushPromiseFrame:
		// Clients cannot push, and our client disabled push (SETTINGS_ENABLE_PUSH 0).
		c.fail(http2.ErrCodeProtocol, ErrProtocol, "PUSH_PROMISE")
	default:
		// Unknown and extension frames are ignored (RFC 9113 4.1, 5.5).
	}
}

// idle reports whether a stream id was never opened (RFC 9113 5.1: idle).
func (c *conn) idle(id uint32) bool {
	if c.server {
		return id%2 == 0 || id > c.lastPeerID
	}
	return id%2 == 0 || id >= c.nextID
}

// --- connection-level frames -----------------------------------------------------------------

func (c *conn) onSettings(f *http2.SettingsFrame) {
	if f.IsAck() {
		if !c.settingsAcked {
			c.settingsAcked = true
			c.hdec.SetAllowedMaxDynamicTableSize(c.cfg.HeaderTableSize)
			if d := int64(c.cfg.InitialStreamWindow) - initialWindow; d < 0 {
				for _, st := range c.streams {
					st.recvWindow += d
				}
			}
		}
		return
	}
	c.gotSettings = true
	if !c.settingsRate.allow(c.cfg.MaxSettingsPerSecond) {
		c.fail(http2.ErrCodeEnhanceYourCalm, ErrFlood, "SETTINGS flood")
		return
	}
	oldWindow := c.peerInitWindow
	if err := f.ForeachSetting(c.settingFn); err != nil {
		return // applySetting failed the connection
	}
	_ = c.fr.WriteSettingsAck()
	c.controlFrame()
	if c.peerInitWindow > oldWindow {
		c.drainQueues()
	}
}

func (c *conn) applySetting(s http2.Setting) error {
	switch s.ID {
	case http2.SettingHeaderTableSize:
		c.henc.SetMaxDynamicTableSizeLimit(s.Val)
	case http2.SettingEnablePush:
		if s.Val > 1 || (!c.server && s.Val != 0) {
			return c.fail(http2.ErrCodeProtocol, ErrProtocol, "invalid SETTINGS_ENABLE_PUSH")
		}
	case http2.SettingMaxConcurrentStreams:
		c.peerMaxStreams = s.Val
	case http2.SettingInitialWindowSize:
		if s.Val > maxWindow {
			return c.fail(http2.ErrCodeFlowControl, ErrFlowControl, "SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1")
		}
		d := int64(s.Val) - c.peerInitWindow
		c.peerInitWindow = int64(s.Val)
		for _, st := range c.streams {
			st.sendWindow += d
			if st.sendWindow > maxWindow {
				return c.fail(http2.ErrCodeFlowControl, ErrFlowControl, "SETTINGS_INITIAL_WINDOW_SIZE overflows a stream window")
			}
		}
	case http2.SettingMaxFrameSize:
		if s.Val < minFrameSize || s.Val > maxFrameSize {
			return c.fail(http2.ErrCodeProtocol, ErrProtocol, "invalid SETTINGS_MAX_FRAME_SIZE")
		}
		c.peerMaxFrame = s.Val
	}
	return nil
}

func (c *conn) onPing(f *http2.PingFrame) {
	if f.IsAck() {
		return
	}
	if !c.pingRate.allow(c.cfg.MaxPingsPerSecond) {
		c.fail(http2.ErrCodeEnhanceYourCalm, ErrFlood, "PING flood")
		return
	}
	_ = c.fr.WritePing(true, f.Data)
	c.controlFrame()
}

func (c *conn) onGoAway(f *http2.GoAwayFrame) {
	c.goawayRecv = true
	c.peerLastID = f.LastStreamID
	if c.server {
		if len(c.streams) == 0 {
			c.closeWhenDone = true
		}
		return
	}
	// Streams above the last id were not processed: refused, safe to retry elsewhere.
	for _, st := range c.streamList() {
		if st.id == 0 || st.id > f.LastStreamID {
			c.removeStream(st)
			c.tell(st, http2.ErrCodeRefusedStream, &refusedError{ErrGoAway})
		}
	}
}

func (c *conn) onWindowUpdate(f *http2.WindowUpdateFrame) {
	c.windowUpdates++
	limit := 5 + 2*(c.streamsOpened+c.cfg.MaxWindowUpdatesPerDataFrame*c.dataFramesSent)
	if c.windowUpdates > limit {
		c.fail(http2.ErrCodeEnhanceYourCalm, ErrFlood, "WINDOW_UPDATE flood")
		return
	}
	inc := int64(f.Increment)
	if f.StreamID == 0 {
		c.sendWindow += inc
		if c.sendWindow > maxWindow {
			c.fail(http2.ErrCodeFlowControl, ErrFlowControl, "connection window above 2^31-1")
			return
		}
		c.drainQueues()
		return
	}
	st := c.streams[f.StreamID]
	if st == nil {
		if c.idle(f.StreamID) {
			c.fail(http2.ErrCodeProtocol, ErrProtocol, "WINDOW_UPDATE on an idle stream")
		}
		return
	}
	st.sendWindow += inc
	if st.sendWindow > maxWindow {
		c.streamError(st, http2.ErrCodeFlowControl, ErrFlowControl)
		return
	}
	if st.inSendQ {
		c.drainQueues()
	}
}

func (c *conn) onRSTStream(f *http2.RSTStreamFrame) {
	id := f.StreamID
	st := c.streams[id]
	if st == nil {
		if c.idle(id) {
			c.fail(http2.ErrCodeProtocol, ErrProtocol, "RST_STREAM on an idle stream")
		}
		return
	}
	if c.server && st.send == sendIdle && time.Since(st.opened) < c.cfg.PrematureResetMinLifetime {
		if c.countAbuse() {
			return
		}
	}
	c.removeStream(st)
	c.tell(st, f.ErrCode, ErrPeerReset)
}

func (c *conn) onPriority(f *http2.PriorityFrame) {
	c.priorityFrames++
	if c.priorityFrames > c.cfg.MaxPriorityPerStream*(1+c.streamsOpened) {
		c.fail(http2.ErrCodeEnhanceYourCalm, ErrFlood, "PRIORITY flood")
		return
	}
	if f.StreamDep == f.StreamID {
		if c.idle(f.StreamID) {
			c.fail(http2.ErrCodeProtocol, ErrProtocol, "stream depends on itself")
			return
		}
		c.streamErrorID(f.StreamID, http2.ErrCodeProtocol, ErrProtocol)
	}
}

// --- errors, resets, stream removal ----------------------------------------------------------

// fail ends the connection with a GOAWAY(code) and reports every stream reset. It returns
// the connection error; later calls keep the first one.
func (c *conn) fail(code http2.ErrCode, sentinel error, reason string) error {
	if c.err != nil {
		return c.err
	}
	ce := &ConnError{Code: code, Err: sentinel, Reason: reason}
	c.err = ce
	if !c.server || c.prefaceDone {
		last := uint32(0)
		if c.server {
			last = c.lastPeerID
		}
		_ = c.fr.WriteGoAway(last, code, []byte(reason))
		c.goawaySent = true
	}
	c.hb.releaseBlock()
	c.hb = headerAssembly{}
	for _, st := range c.streamList() {
		c.removeStream(st)
		c.tell(st, code, ce)
	}
	if !c.inDecode {
		c.flush()
	}
	return ce
}

// countAbuse counts a premature reset or a stream error the peer caused and fails the
// connection (true) once the limit is passed.
func (c *conn) countAbuse() bool {
	c.premature++
	if c.premature > c.cfg.MaxPrematureResets && c.premature*2 > c.streamsOpened {
		c.fail(http2.ErrCodeEnhanceYourCalm, ErrFlood, "too many premature stream resets")
		return true
	}
	return false
}

// streamError resets a stream because of the peer (RST_STREAM(code)) and tells its sink.
func (c *conn) streamError(st *stream, code http2.ErrCode, sentinel error) {
	if st.closed {
		return
	}
	c.writeRST(st.id, code)
	c.removeStream(st)
	c.tell(st, code, sentinel)
	c.countAbuse()
}

// streamErrorID is streamError for a stream id that may have no state.
func (c *conn) streamErrorID(id uint32, code http2.ErrCode, sentinel error) {
	if st := c.streams[id]; st != nil {
		c.streamError(st, code, sentinel)
		return
	}
	if c.idle(id) {
		c.fail(code, sentinel, "stream error on an idle stream")
		return
	}
	c.writeRST(id, code)
	c.countAbuse()
}

// writeRST queues RST_STREAM and remembers the stream as reset by us.
func (c *conn) writeRST(id uint32, code http2.ErrCode) {
	if id == 0 {
		return
	}
	_ = c.fr.WriteRSTStream(id, code)
	c.ring.add(id)
	c.controlFrame()
}

// controlFrame counts a control frame generated in answer to the peer; while the peer does
// not read them, past MaxControlFramesQueued the connection fails.
func (c *conn) controlFrame() {
	if !c.inDecode {
		return
	}
	c.ctrlQueued++
	c.framesQueued++
	if c.ctrlQueued > c.cfg.MaxControlFramesQueued {
		c.fail(http2.ErrCodeEnhanceYourCalm, ErrFlood, "control frames queued while the peer does not read")
	}
}

// countFrame counts a frame generated while decoding the peer's input (see decode).
func (c *conn) countFrame() {
	if c.inDecode {
		c.framesQueued++
	}
}

// tell reports a stream's end to its sink, if the sink knows the stream.
func (c *conn) tell(st *stream, code http2.ErrCode, err error) {
	if st.known {
		st.known = false
		st.sink.OnReset(st.handle, streamErr(st.handle, code, err))
	}
}

// removeStream forgets a stream: its queued bytes are released (after the next flush, as
// pending writes may reference them) and it leaves the send queue.
func (c *conn) removeStream(st *stream) {
	if st.closed {
		return
	}
	st.closed = true
	st.send = sendClosed
	st.recvOpen = false
	if st.id != 0 {
		delete(c.streams, st.id)
	}
	if c.handles != nil {
		delete(c.handles, st.handle)
	}
	c.dropQueue(st)
	if c.server && (c.draining || c.goawayRecv) && len(c.streams) == 0 {
		c.closeWhenDone = true
	}
}

func (c *conn) dropQueue(st *stream) {
	for i, b := range st.q {
		c.out.releaseLater(b)
		st.q[i] = nil
	}
	c.queued -= st.qLen
	st.q, st.qLen = nil, 0
	st.qTrailers, st.hasQTrail = nil, false
	if st.inSendQ {
		st.inSendQ = false
		for i, s := range c.sendQ {
			if s == st {
				copy(c.sendQ[i:], c.sendQ[i+1:])
				c.sendQ[len(c.sendQ)-1] = nil
				c.sendQ = c.sendQ[:len(c.sendQ)-1]
				break
			}
		}
	}
}

// streamList returns the streams in a scratch slice (safe to iterate while removing).
func (c *conn) streamList() []*stream {
	l := c.scratch[:0]
	for _, st := range c.streams {
		l = append(l, st)
	}
	if c.handles != nil {
		for _, st := range c.handles {
			if st.id == 0 {
				l = append(l, st)
			}
		}
	}
	c.scratch = l[:0]
	return l
}

// maybeDone finishes a stream whose directions both ended, and applies RFC 9113 8.1: a
// server that completed its response while the request continues resets it with
// NO_ERROR; a client that got the whole response stops sending with CANCEL.
func (c *conn) maybeDone(st *stream) {
	if st.closed || st.send != sendClosed && st.recvOpen {
		return
	}
	switch {
	case st.send == sendClosed && !st.recvOpen:
		c.removeStream(st)
	case st.send == sendClosed && c.server:
		c.writeRST(st.id, http2.ErrCodeNo)
		c.removeStream(st)
	case !st.recvOpen && !c.server && st.gotHead:
		if st.id != 0 {
			c.writeRST(st.id, http2.ErrCodeCancel)
		}
		c.removeStream(st)
	}
}

// eof resets every active stream: the peer closed the connection.
func (c *conn) eof() {
	if c.err == nil {
		c.err = &ConnError{Code: http2.ErrCodeNo, Err: ErrPeerClosed, Reason: "connection closed by peer"}
	}
	for _, st := range c.streamList() {
		c.removeStream(st)
		code, err := http2.ErrCodeCancel, error(ErrPeerClosed)
		if c.goawayRecv && !c.server && st.id > c.peerLastID {
			code, err = http2.ErrCodeRefusedStream, &refusedError{ErrGoAway}
		}
		c.tell(st, code, err)
	}
}
