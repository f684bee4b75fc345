// Package counter is an example of a user-written stream filter: it counts the requests that
// pass through it and tells each client its number in a response header. It is built and
// registered exactly like Strait's own filters: a typed Config with Validate, a factory built
// once per configuration, a fresh filter instance per request.
package counter

import (
	"errors"
	"strconv"
	"sync/atomic"

	"github.com/strait-proxy/strait/discovery"
	"github.com/strait-proxy/strait/pipeline"
	"github.com/strait-proxy/strait/pipeline/stream"
	"github.com/strait-proxy/strait/protocol"
)

// TypeURL names the filter's configuration in a bootstrap, inside an xds.type.v3.TypedStruct.
const TypeURL = "type.googleapis.com/example.strait.counter.v1.Counter"

// Config is the filter's configuration (the TypedStruct's value).
type Config struct {
	// Header is the response header that carries the request's number.
	Header string `json:"header"`
}

// Validate implements stream.FilterConfig.
func (c *Config) Validate() error {
	if c.Header == "" {
		return errors.New("counter: header is required")
	}
	return nil
}

// NewFactory implements stream.FilterConfig: the count lives in the factory, shared by every
// request of this configuration.
func (c *Config) NewFactory(*pipeline.Deps) (stream.FilterFactory, error) {
	count := new(atomic.Uint64)
	header := c.Header
	return func(fm stream.FilterManager) {
		f := &filter{count: count, header: header}
		fm.AddFilter(f)
		fm.AddEncoderFilter(f)
	}, nil
}

// Filter is the registration a program adds to its list of HTTP filters.
func Filter() discovery.HTTPFilter {
	return discovery.HTTPFilter{
		TypeURL: TypeURL,
		Decode:  discovery.TypedStructHTTPFilterDecoder(func() *Config { return new(Config) }),
	}
}

type filter struct {
	count  *atomic.Uint64
	header string
	n      uint64
}

var (
	_ stream.Filter        = (*filter)(nil)
	_ stream.EncoderFilter = (*filter)(nil)
)

// DecodeHeaders counts the request.
func (f *filter) DecodeHeaders(*stream.Stream, protocol.Headers, bool) stream.Status {
	f.n = f.count.Add(1)
	return stream.Continue
}

// EncodeHeaders adds the request's number to the response.
func (f *filter) EncodeHeaders(_ *stream.Stream, h protocol.Headers, _ bool) stream.Status {
	h.Set(f.header, strconv.FormatUint(f.n, 10))
	return stream.Continue
}
