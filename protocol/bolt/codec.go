package bolt

import (
	"fmt"

	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/reactor"
)

// CodecName is the codec's name in configuration and in the protocol registry.
const CodecName = "bolt"

// CodecOptions configure the codec adapter. The zero value of each field selects its default.
type CodecOptions struct {
	// MaxStreams bounds the requests in flight on one connection. A server codec answers
	// requests past it with SERVER_THREADPOOL_BUSY (oneways past it are dropped) without
	// reporting them; a client codec reports it as its MaxStreams. Default 1024.
	MaxStreams int
	// MaxQueuedBytes bounds the content one connection copies while another frame is being
	// written (Bolt v1 cannot interleave frames; see the README). Past it the frame that does
	// not fit is dropped: a server answers its request with SERVER_THREADPOOL_BUSY, a client
	// fails the stream. Default 4 MiB.
	MaxQueuedBytes int
}

// Defaults for CodecOptions.
const (
	DefaultMaxStreams     = 1024
	DefaultMaxQueuedBytes = 4 << 20
)

// WithDefaults returns o with every zero field set to its default.
func (o CodecOptions) WithDefaults() CodecOptions {
	if o.MaxStreams <= 0 {
		o.MaxStreams = DefaultMaxStreams
	}
	if o.MaxQueuedBytes <= 0 {
		o.MaxQueuedBytes = DefaultMaxQueuedBytes
	}
	return o
}

// Validate reports options that cannot be used.
func (o CodecOptions) Validate() error {
	if o.MaxStreams < 0 || o.MaxQueuedBytes < 0 {
		return fmt.Errorf("%w: negative codec option %+v", ErrBadLimits, o)
	}
	return nil
}

// NewCodec returns the Bolt v1 entry for a protocol.Registry: detection from the first four
// bytes, the downstream (server) codec and the upstream (client) codec, bound to lim and
// opts. Zero fields take their defaults; validate lim and opts once, at configuration time
// (Limits.Validate, CodecOptions.Validate): NewCodec does not fail.
func NewCodec(lim Limits, opts CodecOptions) protocol.Codec {
	lim = lim.WithDefaults()
	opts = opts.WithDefaults()
	return protocol.Codec{
		Name:   CodecName,
		Detect: detect,
		NewServer: func(c reactor.Conn, sink protocol.Sink) protocol.ServerCodec {
			return newServerCodec(c, sink, lim, opts)
		},
		NewClient: func(c reactor.Conn) protocol.ClientCodec {
			return newClientCodec(c, lim, opts)
		},
	}
}

// detect is the registry's detector: Yes when the protocol code, command type and command code
// are Bolt v1, NeedMore while fewer than four bytes are valid so far.
func detect(prefix []byte) protocol.Match {
	switch err := Detect(prefix); {
	case err == nil:
		return protocol.Yes
	case err == ErrNeedMore:
		return protocol.NeedMore
	}
	return protocol.No
}

// reader is the streaming half shared by both codecs: it decodes head parts as soon as they
// are complete and passes content through, as it arrives, to a sink or into the void.
type reader struct {
	lim  Limits
	f    Frame
	body int    // content bytes of the current frame still to come
	id   uint32 // request id of the frame whose content is passing
	sink protocol.Sink
	// last runs before the final content bytes of a delivered frame go to the sink.
	last func(id uint32)
}

// deliver sends the next n content bytes to sink as stream id.
func (r *reader) deliver(id uint32, n int, sink protocol.Sink) {
	r.body, r.id, r.sink = n, id, sink
}

// skip drops the next n content bytes.
func (r *reader) skip(n int) { r.body, r.sink = n, nil }

// content passes pending content on and reports whether bytes are left for a new head. It
// fails when a sink consumed more than it was offered.
func (r *reader) content(in reactor.View) (bool, error) {
	for r.body > 0 {
		have := in.Len()
		if have == 0 {
			return false, nil
		}
		n := min(r.body, have)
		r.body -= n
		if r.sink == nil {
			in.Skip(n)
			continue
		}
		end := r.body == 0
		sink := r.sink
		if end && r.last != nil {
			r.last(r.id)
		}
		sink.OnData(protocol.StreamID(r.id), in, n, end)
		switch used := have - in.Len(); {
		case used < n:
			in.Skip(n - used)
		case used > n:
			return false, fmt.Errorf("%w: bolt: sink consumed %d bytes of %d offered", protocol.ErrConnection, used, n)
		}
	}
	return in.Len() > 0, nil
}

// head decodes the next head part. ErrNeedMore means: wait for more bytes. p is the peeked
// head part (valid until the next Skip), n its length and contentLen the content after it.
func (r *reader) head(in reactor.View) (p []byte, n, contentLen int, err error) {
	have := in.Len()
	p = in.Peek(min(have, RequestHeadLen))
	n, contentLen, err = DecodeHead(p, &r.f, r.lim)
	if err == ErrNeedMore {
		if n > have {
			return nil, 0, 0, ErrNeedMore
		}
		p = in.Peek(n)
		n, contentLen, err = DecodeHead(p, &r.f, r.lim)
	}
	return p, n, contentLen, err
}

// fatal wraps a decode error that ends the connection.
func fatal(err error) error {
	return fmt.Errorf("%w: bolt: %w", protocol.ErrConnection, err)
}
