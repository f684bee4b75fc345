package main

import (
	"fmt"
	"strings"

	"github.com/strait-proxy/strait/discovery"
	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/reactor"
	gnetreactor "github.com/strait-proxy/strait/reactor/gnet"
	netpollreactor "github.com/strait-proxy/strait/reactor/netpoll"
	"github.com/strait-proxy/strait/stdnet"
)

// defaultTransport is used when neither the flag nor the configuration names one.
const defaultTransport = "gnet"

// transports is the ordered list of every transport backend strait can run on.
func transports() []struct {
	name string
	new  reactor.Factory
} {
	return []struct {
		name string
		new  reactor.Factory
	}{
		{"gnet", gnetreactor.New},
		{"netpoll", netpollreactor.New},
		{"stdnet", stdnet.New},
	}
}

func transportNames() []string {
	var names []string
	for _, t := range transports() {
		names = append(names, t.name)
	}
	return names
}

func transportFactory(name string) (reactor.Factory, error) {
	for _, t := range transports() {
		if t.name == name {
			return t.new, nil
		}
	}
	return nil, fmt.Errorf("%w %q (want %s)", errUnknownTransport, name, strings.Join(transportNames(), ", "))
}

// builtinNetworkFilters is the ordered list of built-in network filters.
func builtinNetworkFilters() []discovery.NetworkFilter {
	return []discovery.NetworkFilter{
		discovery.TCPProxyFilter(),
	}
}

// codecs is the registry of L7 protocols the stream manager may speak, from one ordered list.
func codecs() *protocol.Registry {
	reg := protocol.NewRegistry()
	return reg
}
