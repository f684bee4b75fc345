// Command customfilter is Strait with one extra stream filter, the way a user builds their
// own proxy: it lists the transports, filters and codecs it wants (here Strait's built-ins plus
// the counter filter) and hands them to pipeline/server.
//
//	go run ./examples/customfilter -c examples/customfilter/config.yaml
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/strait-proxy/strait/discovery"
	"github.com/strait-proxy/strait/examples/customfilter/counter"
	"github.com/strait-proxy/strait/pipeline/server"
	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/protocol/http1"
	gnetreactor "github.com/strait-proxy/strait/reactor/gnet"
	"github.com/strait-proxy/strait/stdnet"
)

// extensions is everything this program can configure.
func extensions() server.Extensions {
	return server.Extensions{
		Transports: []server.Transport{
			{Name: "gnet", New: gnetreactor.New},
			{Name: "stdnet", New: stdnet.New},
		},
		NetworkFilters: []discovery.NetworkFilter{
			discovery.HTTPConnectionManagerFilter(),
		},
		HTTPFilters: []discovery.HTTPFilter{
			counter.Filter(), // the user's own stage, registered like any built-in
		},
		Codecs: []protocol.Codec{
			http1.NewCodec(http1.Limits{}),
		},
	}
}

func main() {
	cfg := flag.String("c", "examples/customfilter/config.yaml", "bootstrap file")
	transport := flag.String("transport", "", "gnet or stdnet")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := server.Run(ctx, server.Options{ConfigName: *cfg, Transport: *transport}, extensions()); err != nil {
		fmt.Fprintln(os.Stderr, "customfilter:", err)
		os.Exit(1)
	}
}
