// Package stream is Strait's stream manager (what Envoy calls the HTTP connection manager and
// MOSN the proxy) and the public API of stream filters. The manager is a terminal network
// filter: it detects or fixes the downstream protocol, turns the codec's frames into streams,
// runs each stream through its stream filters and the router, sends it to an upstream host
// over a pooled connection and carries the response back.
//
// Who may call it: the configuration translators build Config; users implement Filter and
// EncoderFilter and register a FilterConfig for them exactly as the built-in filters do.
//
// # Threading
//
// A stream lives on its downstream connection's executor, and so do the upstream connections
// it uses: pools are kept per executor and new upstream connections are dialed near the
// downstream one. Request and response bodies therefore go from one connection's read view to
// the other's write side with no copy and no lock. The decode filter chain and routing of each
// request run as a task on the bounded request pool when Config.Dispatch is DispatchPool (a
// saturated pool pauses reading and sheds the request with 503 or the protocol's busy reply);
// with DispatchInline they run on the executor, which is faster when no filter blocks.
//
// Per executor the manager also keeps the deadlines of its connections and streams (an idle
// list and a min-heap served by one executor timer) and finished streams for reuse, so an
// idle connection holds no timer and a proxied request allocates nothing in steady state;
// see README.md, "Memory". Filters may keep a *Stream and call it later: streams are reused
// only by managers with no stream filter configured.
package stream

import (
	"github.com/strait-proxy/strait/pipeline"
	"github.com/strait-proxy/strait/protocol"
)

// Status tells the filter chain what runs after a stream filter callback.
type Status = pipeline.Status

// Statuses for stream filters (the same small enum as network filters).
const (
	// Continue runs the next filter.
	Continue = pipeline.Continue
	// StopIteration pauses the chain; the filter resumes it with Stream.ContinueDecoding (on
	// the stream's executor, e.g. from a function given to Stream.Exec), or ends the stream
	// with Stream.SendLocalReply.
	StopIteration = pipeline.StopIteration
)

// Filter sees a request head on its way upstream, in chain order.
type Filter interface {
	DecodeHeaders(s *Stream, h protocol.Headers, end bool) Status
}

// EncoderFilter sees a response head on its way downstream, in reverse chain order. It may
// change h; returning StopIteration is not supported on the response path and counts as
// Continue.
type EncoderFilter interface {
	EncodeHeaders(s *Stream, h protocol.Headers, end bool) Status
}

// CompletionObserver is told when a stream finished (access logs, counters). Optional,
// found by type assertion on filters added with AddFilter or AddEncoderFilter.
type CompletionObserver interface {
	OnStreamComplete(s *Stream)
}

// FilterManager collects the filters a factory creates for one stream.
type FilterManager interface {
	AddFilter(f Filter)
	AddEncoderFilter(f EncoderFilter)
}

// FilterFactory adds fresh filter instances for one stream. It is built once per
// configuration and must be safe for concurrent use.
type FilterFactory func(fm FilterManager)

// FilterConfig is a stream filter's typed, validated configuration.
type FilterConfig interface {
	Validate() error
	NewFactory(deps *pipeline.Deps) (FilterFactory, error)
}

// NamedFilter is one configured stream filter.
type NamedFilter struct {
	Name   string
	Config FilterConfig
}
