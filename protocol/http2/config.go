package http2

import (
	"fmt"
	"time"
)

// Config is the HTTP/2 codec's typed configuration: what the codec advertises in SETTINGS,
// how much it buffers, and the hardening limits. The zero value of each field selects its
// default; NewCodec applies WithDefaults and Validate.
type Config struct {
	// MaxConcurrentStreams is advertised as SETTINGS_MAX_CONCURRENT_STREAMS (server side: a
	// HEADERS frame past it is refused with RST_STREAM(REFUSED_STREAM)) and caps the streams
	// the client side opens on one connection (the lower of it and the peer's value).
	// Default 100 (Envoy's edge guide).
	MaxConcurrentStreams uint32
	// InitialStreamWindow is advertised as SETTINGS_INITIAL_WINDOW_SIZE: how many body bytes
	// the peer may send on one stream before the codec returns credit. Default 64 KiB.
	InitialStreamWindow uint32
	// InitialConnWindow is the connection receive window (raised from 65,535 with a
	// WINDOW_UPDATE on stream 0 right after SETTINGS). Default 1 MiB.
	InitialConnWindow uint32
	// MaxFrameSize is advertised as SETTINGS_MAX_FRAME_SIZE: the largest frame payload
	// accepted (larger: connection error FRAME_SIZE_ERROR). Default and minimum 16,384.
	MaxFrameSize uint32
	// MaxHeaderListSize is advertised as SETTINGS_MAX_HEADER_LIST_SIZE and enforced on every
	// decoded header list (names + values + 32 per field, RFC 9113 6.5.2). A request over it
	// is answered 431; a response or trailers over it reset the stream. Default 60 KiB (as
	// HTTP/1.1's MaxHeadBytes).
	MaxHeaderListSize uint32
	// HeaderTableSize is advertised as SETTINGS_HEADER_TABLE_SIZE: the HPACK dynamic table
	// the peer's encoder may use against our decoder. Default 4,096.
	HeaderTableSize uint32
	// MaxStreamSendBuffer bounds body bytes queued for one stream while the peer's flow
	// control window is closed (owned copies). Past it the stream is reset. Default 1 MiB.
	MaxStreamSendBuffer int
	// MaxConnSendBuffer bounds the queued bytes of all streams of a connection. Default 8 MiB.
	MaxConnSendBuffer int

	// MaxControlFramesQueued: PING and SETTINGS acknowledgements and RST_STREAM frames the
	// codec generated while the peer was not reading (the connection's outbound queue never
	// emptied). Past it: GOAWAY(ENHANCE_YOUR_CALM). Default 1,000 (Envoy's
	// max_outbound_control_frames).
	MaxControlFramesQueued int
	// MaxOutboundFramesQueued: all frames generated while the peer was not reading. Default
	// 10,000 (Envoy's max_outbound_frames).
	MaxOutboundFramesQueued int
	// MaxConsecutiveEmptyFrames: DATA frames without payload or END_STREAM, and CONTINUATION
	// frames without payload or END_HEADERS, in a row. Past it: GOAWAY(ENHANCE_YOUR_CALM).
	// Default 1 (Envoy's max_consecutive_inbound_frames_with_empty_payload).
	MaxConsecutiveEmptyFrames int
	// MaxPriorityPerStream: PRIORITY frames allowed per stream opened (plus one stream's
	// worth). Past it: GOAWAY(ENHANCE_YOUR_CALM). Default 100.
	MaxPriorityPerStream int
	// MaxWindowUpdatesPerDataFrame: inbound WINDOW_UPDATE frames allowed per DATA frame sent
	// (plus 5 + 2 per stream opened, Envoy's formula). Default 10.
	MaxWindowUpdatesPerDataFrame int
	// MaxPrematureResets: streams the peer reset before any response head was sent and
	// within PrematureResetMinLifetime, plus streams the codec reset because of the peer's
	// errors (CVE-2023-44487 Rapid Reset, CVE-2025-8671). Once they exceed this number and
	// half of the streams opened: GOAWAY(ENHANCE_YOUR_CALM). Default 100.
	MaxPrematureResets int
	// PrematureResetMinLifetime: a reset by the peer after this long is never premature.
	// Default 1s (Envoy's premature_reset_min_stream_lifetime).
	PrematureResetMinLifetime time.Duration
	// MaxSettingsPerSecond: SETTINGS frames (not acknowledgements) accepted per second.
	// Past it: GOAWAY(ENHANCE_YOUR_CALM). Default 100.
	MaxSettingsPerSecond int
	// MaxPingsPerSecond: PING frames (not acknowledgements) accepted per second. Past it:
	// GOAWAY(ENHANCE_YOUR_CALM). Default 1,000.
	MaxPingsPerSecond int
	// MaxHeaderBlockBytes bounds one compressed header block (HEADERS plus its
	// CONTINUATION frames, padding excluded); a longer block cannot decode within
	// MaxHeaderListSize and is a CONTINUATION flood: GOAWAY(ENHANCE_YOUR_CALM).
	// Default MaxHeaderListSize + 16 KiB.
	MaxHeaderBlockBytes int
	// MaxInterimResponses: 1xx responses accepted before a final one (client side).
	// Default 32.
	MaxInterimResponses int
}

// Defaults for Config fields.
const (
	DefaultMaxConcurrentStreams         = 100
	DefaultInitialStreamWindow          = 64 << 10
	DefaultInitialConnWindow            = 1 << 20
	DefaultMaxFrameSize                 = 16 << 10
	DefaultMaxHeaderListSize            = 60 << 10
	DefaultHeaderTableSize              = 4096
	DefaultMaxStreamSendBuffer          = 1 << 20
	DefaultMaxConnSendBuffer            = 8 << 20
	DefaultMaxControlFramesQueued       = 1000
	DefaultMaxOutboundFramesQueued      = 10000
	DefaultMaxConsecutiveEmptyFrames    = 1
	DefaultMaxPriorityPerStream         = 100
	DefaultMaxWindowUpdatesPerDataFrame = 10
	DefaultMaxPrematureResets           = 100
	DefaultPrematureResetMinLifetime    = time.Second
	DefaultMaxSettingsPerSecond         = 100
	DefaultMaxPingsPerSecond            = 1000
	DefaultMaxInterimResponses          = 32

	// protocol bounds (RFC 9113)
	minFrameSize  = 1 << 14
	maxFrameSize  = 1<<24 - 1
	maxWindow     = 1<<31 - 1
	initialWindow = 65535
	maxStreamID   = 1<<31 - 1
	// maxBufferLimit bounds the byte limits so a typo cannot make a connection hold gigabytes.
	maxBufferLimit = 1 << 30
)

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	def := func(v *uint32, d uint32) {
		if *v == 0 {
			*v = d
		}
	}
	defi := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MaxConcurrentStreams, DefaultMaxConcurrentStreams)
	def(&c.InitialStreamWindow, DefaultInitialStreamWindow)
	def(&c.InitialConnWindow, DefaultInitialConnWindow)
	def(&c.MaxFrameSize, DefaultMaxFrameSize)
	def(&c.MaxHeaderListSize, DefaultMaxHeaderListSize)
	def(&c.HeaderTableSize, DefaultHeaderTableSize)
	defi(&c.MaxStreamSendBuffer, DefaultMaxStreamSendBuffer)
	defi(&c.MaxConnSendBuffer, DefaultMaxConnSendBuffer)
	defi(&c.MaxControlFramesQueued, DefaultMaxControlFramesQueued)
	defi(&c.MaxOutboundFramesQueued, DefaultMaxOutboundFramesQueued)
	defi(&c.MaxConsecutiveEmptyFrames, DefaultMaxConsecutiveEmptyFrames)
	defi(&c.MaxPriorityPerStream, DefaultMaxPriorityPerStream)
	defi(&c.MaxWindowUpdatesPerDataFrame, DefaultMaxWindowUpdatesPerDataFrame)
	defi(&c.MaxPrematureResets, DefaultMaxPrematureResets)
	if c.PrematureResetMinLifetime == 0 {
		c.PrematureResetMinLifetime = DefaultPrematureResetMinLifetime
	}
	defi(&c.MaxSettingsPerSecond, DefaultMaxSettingsPerSecond)
	defi(&c.MaxPingsPerSecond, DefaultMaxPingsPerSecond)
	defi(&c.MaxHeaderBlockBytes, int(c.MaxHeaderListSize)+16<<10)
	defi(&c.MaxInterimResponses, DefaultMaxInterimResponses)
	return c
}

// Override returns c with every non-zero field of o in place of c's (a listener's or a
// cluster's limits over the program's).
func (c Config) Override(o Config) Config {
	set := func(dst *uint32, v uint32) {
		if v != 0 {
			*dst = v
		}
	}
	seti := func(dst *int, v int) {
		if v != 0 {
			*dst = v
		}
	}
	set(&c.MaxConcurrentStreams, o.MaxConcurrentStreams)
	set(&c.InitialStreamWindow, o.InitialStreamWindow)
	set(&c.InitialConnWindow, o.InitialConnWindow)
	set(&c.MaxFrameSize, o.MaxFrameSize)
	set(&c.MaxHeaderListSize, o.MaxHeaderListSize)
	set(&c.HeaderTableSize, o.HeaderTableSize)
	seti(&c.MaxStreamSendBuffer, o.MaxStreamSendBuffer)
	seti(&c.MaxConnSendBuffer, o.MaxConnSendBuffer)
	seti(&c.MaxControlFramesQueued, o.MaxControlFramesQueued)
	seti(&c.MaxOutboundFramesQueued, o.MaxOutboundFramesQueued)
	seti(&c.MaxConsecutiveEmptyFrames, o.MaxConsecutiveEmptyFrames)
	seti(&c.MaxPriorityPerStream, o.MaxPriorityPerStream)
	seti(&c.MaxWindowUpdatesPerDataFrame, o.MaxWindowUpdatesPerDataFrame)
	seti(&c.MaxPrematureResets, o.MaxPrematureResets)
	if o.PrematureResetMinLifetime != 0 {
		c.PrematureResetMinLifetime = o.PrematureResetMinLifetime
	}
	seti(&c.MaxSettingsPerSecond, o.MaxSettingsPerSecond)
	seti(&c.MaxPingsPerSecond, o.MaxPingsPerSecond)
	seti(&c.MaxHeaderBlockBytes, o.MaxHeaderBlockBytes)
	seti(&c.MaxInterimResponses, o.MaxInterimResponses)
	return c
}

// Validate reports values that cannot work. Zero fields are valid (they mean the default)
// and are checked as such.
func (c Config) Validate() error {
	d := c.WithDefaults()
	switch {
	case d.InitialStreamWindow > maxWindow:
		return fmt.Errorf("%w: InitialStreamWindow %d above 2^31-1", ErrInvalidConfig, d.InitialStreamWindow)
	case d.InitialConnWindow > maxWindow || d.InitialConnWindow < initialWindow:
		return fmt.Errorf("%w: InitialConnWindow %d, want %d..2^31-1", ErrInvalidConfig, d.InitialConnWindow, initialWindow)
	case d.MaxFrameSize < minFrameSize || d.MaxFrameSize > maxFrameSize:
		return fmt.Errorf("%w: MaxFrameSize %d, want %d..%d", ErrInvalidConfig, d.MaxFrameSize, minFrameSize, maxFrameSize)
	case d.MaxHeaderListSize > maxBufferLimit/64:
		return fmt.Errorf("%w: MaxHeaderListSize %d above %d", ErrInvalidConfig, d.MaxHeaderListSize, maxBufferLimit/64)
	case d.HeaderTableSize > 1<<20:
		return fmt.Errorf("%w: HeaderTableSize %d above 1 MiB", ErrInvalidConfig, d.HeaderTableSize)
	case d.MaxConcurrentStreams > 1<<20:
		return fmt.Errorf("%w: MaxConcurrentStreams %d above 1048576", ErrInvalidConfig, d.MaxConcurrentStreams)
	case d.PrematureResetMinLifetime < 0:
		return fmt.Errorf("%w: PrematureResetMinLifetime must not be negative", ErrInvalidConfig)
	}
	for _, f := range []struct {
		name string
		v    int
	}{
		{"MaxStreamSendBuffer", d.MaxStreamSendBuffer},
		{"MaxConnSendBuffer", d.MaxConnSendBuffer},
		{"MaxControlFramesQueued", d.MaxControlFramesQueued},
		{"MaxOutboundFramesQueued", d.MaxOutboundFramesQueued},
		{"MaxConsecutiveEmptyFrames", d.MaxConsecutiveEmptyFrames},
		{"MaxPriorityPerStream", d.MaxPriorityPerStream},
		{"MaxWindowUpdatesPerDataFrame", d.MaxWindowUpdatesPerDataFrame},
		{"MaxPrematureResets", d.MaxPrematureResets},
		{"MaxSettingsPerSecond", d.MaxSettingsPerSecond},
		{"MaxPingsPerSecond", d.MaxPingsPerSecond},
		{"MaxHeaderBlockBytes", d.MaxHeaderBlockBytes},
		{"MaxInterimResponses", d.MaxInterimResponses},
	} {
		if f.v < 0 || f.v > maxBufferLimit {
			return fmt.Errorf("%w: %s = %d, want 0 (default) or 1..%d", ErrInvalidConfig, f.name, f.v, maxBufferLimit)
		}
	}
	if d.MaxConnSendBuffer < d.MaxStreamSendBuffer {
		return fmt.Errorf("%w: MaxConnSendBuffer (%d) below MaxStreamSendBuffer (%d)", ErrInvalidConfig, d.MaxConnSendBuffer, d.MaxStreamSendBuffer)
	}
	if d.MaxHeaderBlockBytes < int(d.MaxHeaderListSize) {
		return fmt.Errorf("%w: MaxHeaderBlockBytes (%d) below MaxHeaderListSize (%d)", ErrInvalidConfig, d.MaxHeaderBlockBytes, d.MaxHeaderListSize)
	}
	return nil
}
