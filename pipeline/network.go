// Package pipeline owns Strait's data path above the transport: listeners and their network
// filter chains, the per-connection filter manager, the upstream cluster interfaces the
// terminal filters use, and (in subpackages, one folder each) the built-in filters such as
// tcp_proxy and the HTTP/Bolt stream manager.
//
// Who may call it: cmd/strait wires it to a concrete reactor.Transport and to the cluster
// manager that discovery/ builds; user programs register their own filters through the same
// NetworkFilterConfig interface the built-in filters implement. pipeline never imports a
// transport backend, and never discovery/: clusters reach it through the small interfaces in
// cluster.go.
package pipeline

import (
	"errors"
	"log/slog"

	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/reactor"
)

// Status tells the filter manager what runs after a filter callback returns.
type Status uint8

const (
	// Continue passes the event to the next filter in the chain.
	Continue Status = iota
	// StopIteration ends this event's walk down the chain. The filter that returned it
	// resumes the chain later with Connection.ContinueReading (for OnNewConnection) or simply
	// by consuming the data on a later OnData.
	StopIteration
)

// ReadFilter sees a connection's inbound side. The last read filter of a chain is the
// terminal filter (tcp_proxy, the stream manager) that consumes the bytes.
type ReadFilter interface {
	// OnNewConnection runs once when the connection opens, in chain order.
	OnNewConnection(c *Connection) Status
	// OnData offers the unconsumed inbound bytes. Non-terminal filters inspect with
	// in.Peek and return Continue; the terminal filter consumes with in.Skip or in.Detach.
	// endStream is true once the peer shut down its write side (and then in may be empty).
	OnData(c *Connection, in reactor.View, endStream bool) Status
}

// WriteFilter sees bytes on their way to the downstream peer, in reverse chain order.
// Write filters observe: they may count or inspect, not rewrite (rewriting would force a copy
// of every forwarded byte). Returning StopIteration drops the write.
type WriteFilter interface {
	OnWrite(c *Connection, p []byte) Status
}

// Optional capabilities of a filter, found by type assertion when the event happens (on
// every filter of the connection, read filters first, in the order they were added).
type (
	// WritableObserver is told when the downstream connection drained below its low watermark
	// after being congested.
	WritableObserver interface{ OnDownstreamWritable(c *Connection) }
	// HalfCloser decides whether the downstream write side stays open after the peer's FIN.
	// The terminal filter's answer wins (the last read filter implementing it, else the
	// last such write filter); without one the connection closes.
	HalfCloser interface{ KeepWriteOpen(c *Connection) bool }
	// CloseObserver is told when the downstream connection closed.
	CloseObserver interface {
		OnClose(c *Connection, err error)
	}
)

// FilterManager collects the filters a factory creates for one connection.
type FilterManager interface {
	AddReadFilter(f ReadFilter)
	AddWriteFilter(f WriteFilter)
}

// NetworkFilterFactory adds a fresh filter instance (or several) for one connection. It is
// built once per configuration snapshot by NetworkFilterConfig.NewFactory and shared by every
// connection of the filter chain, so it must be safe for concurrent use.
type NetworkFilterFactory func(fm FilterManager)

// NetworkFilterConfig is the typed, validated configuration of one network filter. The
// bootstrap and xDS translators produce it; the listener builds a factory from it once.
type NetworkFilterConfig interface {
	// Validate reports every problem with the configuration itself (no dependencies).
	Validate() error
	// NewFactory builds the shared factory, resolving dependencies such as clusters.
	NewFactory(deps *Deps) (NetworkFilterFactory, error)
}

// Deps are the long-lived services filters may use. They come in through this struct, never
// through package globals.
type Deps struct {
	Logger   *slog.Logger
	Clusters ClusterManager
	// Transport dials upstream connections near the downstream one.
	Transport reactor.Transport
	// Go runs a task on the bounded request pool; it returns false when the pool is
	// saturated and the task was not accepted.
	Go func(task func()) bool
	// Stats receives the filters' counters and gauges.
	Stats *Stats
	// Codecs are the L7 protocols the stream manager may speak.
	Codecs *protocol.Registry
}

// ErrConfig wraps configuration errors raised while building factories.
var ErrConfig = errors.New("pipeline: invalid configuration")
