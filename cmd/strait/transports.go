package main

import (
	"github.com/strait-proxy/strait/discovery"
	"github.com/strait-proxy/strait/pipeline/server"
	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/protocol/bolt"
	"github.com/strait-proxy/strait/protocol/http1"
	"github.com/strait-proxy/strait/protocol/http2"
	gnetreactor "github.com/strait-proxy/strait/reactor/gnet"
	netpollreactor "github.com/strait-proxy/strait/reactor/netpoll"
	"github.com/strait-proxy/strait/stdnet"
)

// builtins is the one place that names every transport backend, filter and codec strait
// ships, each list in order. User programs build their own Extensions the same way (see
// examples/customfilter).
func builtins() server.Extensions {
	return server.Extensions{
		Transports: []server.Transport{
			// gnet's loops block in epoll_wait on their own Ps: one spare P keeps them from
			// losing it (12% more HTTP/1.1 requests per second on one core). netpoll's
			// poller yields its P to the reader tasks its reads readied instead (pollerYield
			// in reactor/netpoll); with a second P its busy-polling competed with the tasks
			// for the core (p99 and req/s varied more). stdnet lost throughput. Neither asks.
			{Name: "gnet", New: gnetreactor.New, SpareP: true},
			{Name: "netpoll", New: netpollreactor.New},
			{Name: "stdnet", New: stdnet.New},
		},
		NetworkFilters: []discovery.NetworkFilter{
			discovery.TCPProxyFilter(),
			discovery.HTTPConnectionManagerFilter(),
			discovery.RPCProxyFilter(),
		},
		HTTPFilters: []discovery.HTTPFilter{},
		Codecs: []protocol.Codec{
			http1.NewCodec(http1.Limits{}),
			http2.NewCodec(http2.Config{}),
			bolt.NewCodec(bolt.Limits{}, bolt.CodecOptions{}),
		},
		// gnet: the smallest idle connections and same-loop forwarding (see README).
		DefaultTransport: "gnet",
	}
}

func transportNames() []string {
	ext := builtins()
	return ext.TransportNames()
}
