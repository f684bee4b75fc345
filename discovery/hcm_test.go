package discovery

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/strait-proxy/strait/pipeline"
	"github.com/strait-proxy/strait/pipeline/router"
	"github.com/strait-proxy/strait/pipeline/stream"
	"github.com/strait-proxy/strait/protocol"
	"github.com/strait-proxy/strait/protocol/http2"
)

// addHeaderConfig is a user HTTP filter configured through a TypedStruct: it sets one
// request header.
type addHeaderConfig struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

func (c *addHeaderConfig) Validate() error {
	if c.Name == "" {
		return errors.New("name is required")
	}
	return nil
}

func (c *addHeaderConfig) NewFactory(*pipeline.Deps) (stream.FilterFactory, error) {
	return func(fm stream.FilterManager) { fm.AddFilter(addHeader{c}) }, nil
}

type addHeader struct{ c *addHeaderConfig }

func (a addHeader) DecodeHeaders(_ *stream.Stream, h protocol.Headers, _ bool) stream.Status {
	h.Set(a.c.Name, a.c.Value)
	return stream.Continue
}

const addHeaderURL = "type.googleapis.com/acme.headers.v1.AddHeader"

func addHeaderFilter() HTTPFilter {
	return HTTPFilter{TypeURL: addHeaderURL, Decode: TypedStructHTTPFilterDecoder(func() *addHeaderConfig { return &addHeaderConfig{} })}
}

func streamConfig(t *testing.T, l pipeline.ListenerConfig) *stream.Config {
	t.Helper()
	if len(l.FilterChain) != 1 {
		t.Fatalf("listener %q: %d filters", l.Name, len(l.FilterChain))
	}
	sc, ok := l.FilterChain[0].Config.(*stream.Config)
	if !ok {
		t.Fatalf("listener %q: filter config is %T, want *stream.Config", l.Name, l.FilterChain[0].Config)
	}
	return sc
}

func headerList(pairs ...string) *protocol.HeaderList { return protocol.NewHeaderList(pairs...) }

// TestParseHTTPProxyExample: the README's complete HCM example translates into exactly the
// stream manager and route table configuration it describes, and routes requests so.
func TestParseHTTPProxyExample(t *testing.T) {
	s, err := parseFile(t, "valid-http-proxy.yaml", testRegistry(t))
	if err != nil {
		t.Fatalf("the README example must load: %v", err)
	}
	sc := streamConfig(t, s.Listeners[0])
	wantRoute := &router.Config{
		Name: "local_route",
		HeaderMods: router.HeaderMods{
			RequestHeadersToAdd: []router.HeaderValue{{Name: "x-proxied-by", Value: "strait", Append: false}},
		},
		VirtualHosts: []router.VirtualHost{{
			Name:       "backend",
			Domains:    []string{"*"},
			HeaderMods: router.HeaderMods{ResponseHeadersToRemove: []string{"x-internal-debug"}},
			Routes: []router.Route{
				{Name: "healthz", Match: router.Match{Path: "/healthz"}, Direct: &router.DirectResponse{Status: 200, Body: "ok\n"}},
				{
					Name: "api",
					Match: router.Match{Prefix: "/api/", Headers: []router.HeaderMatcher{
						{Name: "x-canary", Kind: router.HeaderPresent, Invert: true},
					}},
					Action: &router.Action{
						WeightedClusters: []router.WeightedCluster{
							{Name: "api", Weight: 90},
							{Name: "api-canary", Weight: 10, HeaderMods: router.HeaderMods{
								RequestHeadersToAdd: []router.HeaderValue{{Name: "x-canary", Value: "1", Append: true}},
							}},
						},
						Timeout: 5 * time.Second,
						Retry: &router.RetryPolicy{
							On:            router.RetryConnectFailure | router.RetryReset | router.Retry5xx,
							NumRetries:    2,
							PerTryTimeout: 2 * time.Second,
						},
						HashPolicy: []router.HashPolicy{{Header: "x-user"}},
					},
				},
				{Name: "web", Match: router.Match{Prefix: "/"}, Action: &router.Action{
					Cluster: "web", Timeout: router.DefaultTimeout, HostRewrite: "www.internal"}},
			},
		}},
	}
	if !reflect.DeepEqual(sc.Route, wantRoute) {
		t.Errorf("route table\n got %#v\nwant %#v", sc.Route, wantRoute)
	}
	want := stream.Config{
		StatPrefix:               "ingress_http",
		Codecs:                   []string{"http1", "http2"},
		Route:                    sc.Route,
		IdleTimeout:              300 * time.Second,
		StreamIdleTimeout:        60 * time.Second,
		MaxRequestsPerConnection: 1000,
		MaxStreams:               256,
		Dispatch:                 stream.DispatchPool,
		DefaultUpstreamCodec:     "http1",
		CodecConfigs:             map[string]any{"http2": http2.Config{MaxConcurrentStreams: 256}},
	}
	if !reflect.DeepEqual(*sc, want) {
		t.Errorf("stream config\n got %+v\nwant %+v", *sc, want)
	}

	pools := map[string]pipeline.ConnPoolOptions{}
	for _, c := range s.Clusters {
		pools[c.Name] = c.ConnPool
	}
	wantPools := map[string]pipeline.ConnPoolOptions{
		"api":        {Protocol: "http1", MaxRequestsPerConnection: 10000, IdleTimeout: 30 * time.Second},
		"api-canary": {},
		"web":        {Protocol: "http2", MaxConcurrentStreams: 100, CodecConfigs: map[string]any{"http2": http2.Config{MaxConcurrentStreams: 100}}},
	}
	if !reflect.DeepEqual(pools, wantPools) {
		t.Errorf("connection pools\n got %+v\nwant %+v", pools, wantPools)
	}
	if s.Clusters[0].LBPolicy != RingHash || s.Runtime.WorkerPoolSize != 10000 || s.Runtime.RequestDispatch != stream.DispatchPool {
		t.Errorf("cluster %+v runtime %+v", s.Clusters[0], s.Runtime)
	}

	// What a client sees: the compiled table routes requests as the comments say.
	rt, err := router.New(sc.Route)
	if err != nil {
		t.Fatal(err)
	}
	if e := rt.Route(headerList(":authority", "a.example", ":path", "/healthz")); e == nil || e.Direct == nil || e.Direct.Status != 200 || e.Direct.Body != "ok\n" {
		t.Fatalf("/healthz: %+v", e)
	}
	e := rt.Route(headerList(":authority", "a.example", ":path", "/api/orders", "x-user", "u1"))
	if e == nil || e.Name != "api" {
		t.Fatalf("/api/orders: %+v", e)
	}
	picked := map[string]int{}
	for range 2000 {
		name, wc := e.PickCluster()
		picked[name]++
		if name == "api-canary" && (wc == nil || len(wc.RequestHeadersToAdd) != 1) {
			t.Fatalf("canary pick without its header: %+v", wc)
		}
	}
	if picked["api"] < 1500 || picked["api-canary"] < 100 || len(picked) != 2 {
		t.Errorf("90/10 split picked %v", picked)
	}
	if e := rt.Route(headerList(":authority", "a.example", ":path", "/api/orders", "x-canary", "1")); e == nil || e.Name != "web" {
		t.Errorf("/api/ with x-canary must fall through to web: %+v", e)
	}
	if e := rt.Route(headerList(":authority", "b.example:8080", ":path", "/index.html")); e == nil || e.Action.Cluster != "web" {
		t.Errorf("/index.html: %+v", e)
	}
}

func TestParseBoltProxyExample(t *testing.T) {
	s, err := parseFile(t, "valid-bolt-proxy.yaml", testRegistry(t))
	if err != nil {
		t.Fatalf("the README example must load: %v", err)
	}
	sc := streamConfig(t, s.Listeners[0])
	want := &stream.Config{
		StatPrefix:  "bolt_ingress",
		Codecs:      []string{"bolt"},
		IdleTimeout: 600 * time.Second,
		MaxStreams:  2048,
		Dispatch:    stream.DispatchInline,
		Route: &router.Config{Name: "bolt_ingress", VirtualHosts: []router.VirtualHost{{
			Name: "*", Domains: []string{"*"},
			Routes: []router.Route{
				{Name: "orders", Match: router.Match{Path: "com.example.OrderService"}, Action: &router.Action{
					Cluster: "orders", Timeout: 3 * time.Second,
					Retry: &router.RetryPolicy{On: router.RetryConnectFailure | router.RetryReset, NumRetries: 1},
				}},
				{Name: "payments", Match: router.Match{Prefix: "com.example.pay."}, Action: &router.Action{
					WeightedClusters: []router.WeightedCluster{{Name: "payments", Weight: 80}, {Name: "payments-canary", Weight: 20}},
					Timeout:          router.DefaultTimeout,
				}},
				{Name: "gold", Match: router.Match{Regex: `com\.example\..*`, Headers: []router.HeaderMatcher{
					{Name: "x-tenant", Kind: router.HeaderExact, Value: "gold"},
				}}, Action: &router.Action{Cluster: "gold", Timeout: router.DefaultTimeout}},
				{Name: "default", Action: &router.Action{Cluster: "default", Timeout: router.DefaultTimeout}},
			},
		}}},
	}
	if !reflect.DeepEqual(sc, want) {
		t.Fatalf("rpc proxy\n got %+v\n     %+v\nwant %+v\n     %+v", sc, sc.Route, want, want.Route)
	}
	rt, err := router.New(sc.Route)
	if err != nil {
		t.Fatal(err)
	}
	// Bolt requests carry no :authority; the codec puts the service class name in :path.
	for _, c := range []struct {
		path, tenant, route string
	}{
		{"com.example.OrderService", "", "orders"},
		{"com.example.pay.RefundService", "gold", "payments"},
		{"com.example.CatalogService", "gold", "gold"},
		{"com.example.CatalogService", "silver", "default"},
		{"org.other.Service", "gold", "default"},
	} {
		h := headerList(":path", c.path)
		if c.tenant != "" {
			h.Add("x-tenant", c.tenant)
		}
		if e := rt.Route(h); e == nil || e.Name != c.route {
			t.Errorf("%s (tenant %q): routed to %+v, want %s", c.path, c.tenant, e, c.route)
		}
	}
}

// TestExampleFilesAreTheTestedOnes keeps examples/, the README and testdata identical.
func TestL7ExampleFilesAreTheTestedOnes(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ example, testdata string }{
		{"../examples/http-proxy.yaml", "testdata/valid-http-proxy.yaml"},
		{"../examples/bolt-proxy.yaml", "testdata/valid-bolt-proxy.yaml"},
	} {
		ex, err := os.ReadFile(f.example)
		if err != nil {
			t.Fatal(err)
		}
		td, err := os.ReadFile(f.testdata)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ex, td) {
			t.Errorf("%s and %s differ; keep them identical", f.example, f.testdata)
		}
		if !bytes.Contains(readme, td) {
			t.Errorf("README.md must contain %s verbatim", f.example)
		}
		if _, err := Load(f.example, testRegistry(t)); err != nil {
			t.Error(err)
		}
	}
}

func TestParseEnvoyDemo(t *testing.T) {
	s, err := parseFile(t, "valid-envoy-demo.yaml", testRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	sc := streamConfig(t, s.Listeners[0])
	a := sc.Route.VirtualHosts[0].Routes[0].Action
	if sc.StatPrefix != "ingress_http" || !reflect.DeepEqual(sc.Codecs, []string{"http1", "http2"}) || sc.IdleTimeout != stream.DefaultIdleTimeout ||
		a.Cluster != "service_envoyproxy_io" || a.HostRewrite != "www.envoyproxy.io" || a.Timeout != router.DefaultTimeout || a.Retry != nil {
		t.Fatalf("%+v %+v", sc, a)
	}
}

// TestParseInvalidL7: every L7 mistake is reported, each naming file, resource and field.
func TestParseInvalidL7(t *testing.T) {
	const hcm = `filter_chains[0].filters[0].typed_config.`
	runInvalidCases(t, testRegistry(t), []invalidCase{
		{"invalid-http-filters.yaml", []error{ErrUnknownFilter, ErrInvalid, ErrUnsupported}, []string{
			`invalid-http-filters.yaml: static_resources.listeners[0] ("unknown_filter"): ` + hcm + `http_filters[0].typed_config: unknown filter type "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors" for an HTTP filter (registered HTTP filters: type.googleapis.com/acme.headers.v1.AddHeader; the last filter must be type.googleapis.com/envoy.extensions.filters.http.router.v3.Router)`,
			`invalid-http-filters.yaml: static_resources.listeners[1] ("unknown_typed_struct"): ` + hcm + `http_filters[0].typed_config: unknown filter type "type.googleapis.com/acme.auth.v1.Auth" for an HTTP filter`,
			`invalid-http-filters.yaml: static_resources.listeners[2] ("router_not_last"): ` + hcm + `http_filters[0]: invalid value: the router (envoy.filters.http.router) must be the last HTTP filter, found at 0 of 2`,
			`invalid-http-filters.yaml: static_resources.listeners[3] ("no_router"): ` + hcm + `http_filters[0]: invalid value: the last HTTP filter must be the router (type.googleapis.com/envoy.extensions.filters.http.router.v3.Router), found "acme.headers"`,
			`invalid-http-filters.yaml: static_resources.listeners[4] ("no_filters"): ` + hcm + `http_filters: invalid value: at least the router is required`,
			`invalid-http-filters.yaml: static_resources.listeners[5] ("router_settings"): ` + hcm + `http_filters[0].typed_config.value: unknown field "nme" (did you mean "name"?)`,
			`invalid-http-filters.yaml: static_resources.listeners[5] ("router_settings"): ` + hcm + `http_filters[0].typed_config.value: name is required`,
			`invalid-http-filters.yaml: static_resources.listeners[5] ("router_settings"): ` + hcm + `http_filters[1].typed_config: field "suppress_envoy_headers" is not supported by Strait`,
			`invalid-http-filters.yaml: static_resources.listeners[5] ("router_settings"): ` + hcm + `http_filters[1].typed_config: field "dynamic_stats" is not supported by Strait`,
		}},
		{"invalid-route-fields.yaml", []error{ErrUnsupported}, []string{
			`invalid-route-fields.yaml: static_resources.listeners[0] ("listener_0"): filter_chains[0].filters[0].typed_config: field "use_remote_address" is not supported by Strait`,
			`invalid-route-fields.yaml: static_resources.listeners[0] ("listener_0"): filter_chains[0].filters[0].typed_config: field "server_name" is not supported by Strait`,
			`invalid-route-fields.yaml: static_resources.listeners[0] ("listener_0"): ` + hcm + `route_config.virtual_hosts[0]: field "cors" is not supported by Strait`,
			`invalid-route-fields.yaml: static_resources.listeners[0] ("listener_0"): ` + hcm + `route_config.virtual_hosts[0].routes[0]: field "redirect" is not supported by Strait`,
			`invalid-route-fields.yaml: static_resources.listeners[0] ("listener_0"): ` + hcm + `route_config.virtual_hosts[0].routes[1].route: field "regex_rewrite" is not supported by Strait`,
			`invalid-route-fields.yaml: static_resources.listeners[0] ("listener_0"): ` + hcm + `route_config.virtual_hosts[0].routes[1].route: field "auto_host_rewrite" is not supported by Strait`,
			`invalid-route-fields.yaml: static_resources.listeners[0] ("listener_0"): ` + hcm + `route_config.virtual_hosts[0].routes[2].match.headers[0]: field "exact_match" is not supported by Strait`,
			`invalid-route-fields.yaml: static_resources.listeners[1] ("listener_rds"): filter_chains[0].filters[0].typed_config: field "rds" is not supported by Strait`,
		}},
		{"invalid-route-values.yaml", []error{ErrInvalid, ErrUnsupported}, []string{
			hcm + `codec_type: HTTP3 is not supported by Strait (AUTO, HTTP1, HTTP2)`,
			hcm + `stream_idle_timeout: 0s (disabling it) is not supported by Strait`,
			hcm + `route_config.request_headers_to_add[0].header.value: "%DOWNSTREAM_REMOTE_ADDRESS%": Envoy's %COMMAND% substitutions are not supported by Strait (write %% for a literal %)`,
			hcm + `route_config.request_headers_to_add[1].append_action: ADD_IF_ABSENT is not supported by Strait`,
			hcm + `route_config.request_headers_to_remove[0]: invalid value: "host": pseudo-headers and host cannot be modified`,
			hcm + `route_config.virtual_hosts[0].routes[0].route.retry_policy.retry_on: invalid value: unknown retry condition "connect-falure"`,
			hcm + `route_config.virtual_hosts[0].routes[1].route.retry_policy.retry_on: "retriable-4xx" is not supported by Strait`,
			hcm + "route_config.virtual_hosts[0].routes[2].match.safe_regex.regex: invalid value: \"^/(unclosed\": error parsing regexp: missing closing ): `^/(unclosed`",
			hcm + `route_config.virtual_hosts[0].routes[3].route.prefix_rewrite: with a safe_regex match is not supported by Strait`,
			hcm + `route_config.virtual_hosts[0].routes[4].route.weighted_clusters.clusters[0].weight: a weight of 0 is not supported by Strait`,
		}},
		{"invalid-dangling-route-cluster.yaml", []error{ErrDanglingCluster}, []string{
			`invalid-dangling-route-cluster.yaml: static_resources.listeners[0] ("listener_0"): filter_chains[0].filters[0].typed_config: filter "envoy.filters.network.http_connection_manager": virtual host "shop" (virtual_hosts[0]), route routes[0]: undefined cluster "shop" (not in static_resources.clusters)`,
			`invalid-dangling-route-cluster.yaml: static_resources.listeners[0] ("listener_0"): filter_chains[0].filters[0].typed_config: filter "envoy.filters.network.http_connection_manager": virtual host "backend" (virtual_hosts[1]), route "split" (routes[0]), weighted cluster 1: undefined cluster "backend-canary" (not in static_resources.clusters)`,
		}},
		{"invalid-rpc-proxy.yaml", []error{ErrInvalid, ErrUnknownField, ErrDanglingCluster}, []string{
			`invalid-rpc-proxy.yaml: static_resources.listeners[0] ("bolt"): filter_chains[0].filters[0].typed_config.value.idle_timeout: invalid value: "soon" is not a duration like "5s" or "250ms"`,
			`invalid-rpc-proxy.yaml: static_resources.listeners[0] ("bolt"): filter_chains[0].filters[0].typed_config.value.routes[1].match: unknown field "servce" (did you mean "service"?)`,
			`invalid-rpc-proxy.yaml: static_resources.listeners[0] ("bolt"): filter_chains[0].filters[0].typed_config.value.protocol: invalid value: "dubbo" is not a codec of this program (codecs: http1, http2, bolt)`,
			`invalid-rpc-proxy.yaml: static_resources.listeners[0] ("bolt"): filter_chains[0].filters[0].typed_config.value.routes[0].match: invalid value: at most one of service, service_prefix and service_regex`,
			`invalid-rpc-proxy.yaml: static_resources.listeners[0] ("bolt"): filter_chains[0].filters[0].typed_config.value.routes[0].route.retry_policy.retry_on[0]: invalid value: "5xx" (an RPC proxy retries on connect-failure or reset)`,
			`invalid-rpc-proxy.yaml: static_resources.listeners[1] ("bolt_dangling"): filter_chains[0].filters[0].typed_config: filter "strait.filters.network.rpc_proxy": virtual host "*" (virtual_hosts[0]), route "a" (routes[0]), weighted cluster 1: undefined cluster "c" (not in static_resources.clusters)`,
		}},
		{"invalid-protocol-options.yaml", []error{ErrInvalid, ErrUnsupported}, []string{
			`invalid-protocol-options.yaml: bootstrap_extensions[0] ("strait.runtime"): typed_config.value.request_dispatch: invalid value: "eventually" (want auto, pool or inline)`,
			`invalid-protocol-options.yaml: static_resources.clusters[0] ("tcp_options"): typed_extension_protocol_options["envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions"]: not supported by Strait: only envoy.extensions.upstreams.http.v3.HttpProtocolOptions`,
			`invalid-protocol-options.yaml: static_resources.clusters[1] ("never_idle"): typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].common_http_protocol_options: field "max_connection_duration" is not supported by Strait`,
			`invalid-protocol-options.yaml: static_resources.clusters[1] ("never_idle"): typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].common_http_protocol_options.idle_timeout: 0s (never closing idle upstream connections) is not supported by Strait`,
			`invalid-protocol-options.yaml: static_resources.clusters[2] ("auto"): typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]: field "auto_config" is not supported by Strait`,
		}},
		{"invalid-envoy-demo.yaml", []error{ErrUnsupported}, []string{
			`invalid-envoy-demo.yaml: static_resources.listeners[0] ("listener_0"): filter_chains[0].filters[0].typed_config: field "access_log" is not supported by Strait`,
			`invalid-envoy-demo.yaml: static_resources.clusters[0] ("service_envoyproxy_io"): field "transport_socket" is not supported by Strait`,
			`invalid-envoy-demo.yaml: static_resources.clusters[0] ("service_envoyproxy_io"): type: LOGICAL_DNS is not supported by Strait (STATIC, STRICT_DNS)`,
		}},
	})
}

// TestCodecAvailability: the connection managers and clusters only use codecs the program
// has (Registry.SetCodecs).
func TestCodecAvailability(t *testing.T) {
	hcm := func(extra string) string {
		return `
static_resources:
  listeners:
  - name: l
    address: { socket_address: { address: 127.0.0.1, port_value: 1 } }
    filter_chains:
    - filters:
      - name: hcm
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: s
          http_filters: [ { name: envoy.filters.http.router } ]
          route_config: { virtual_hosts: [ { name: v, domains: ["*"], routes: [ { match: { prefix: / }, route: { cluster: c } } ] } ] }
` + extra + `
  clusters:
  - name: c
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: { http2_protocol_options: {} }
`
	}
	registry := func(codecs ...string) *Registry {
		reg := NewRegistry()
		reg.SetCodecs(codecs)
		if err := reg.Register(HTTPConnectionManagerFilter()); err != nil {
			t.Fatal(err)
		}
		return reg
	}
	// AUTO is the available codecs among http1 and http2, in that order.
	s, err := Parse("x.yaml", []byte(hcm("")), registry("bolt", "http2", "http1"))
	if err != nil {
		t.Fatal(err)
	}
	if got := streamConfig(t, s.Listeners[0]).Codecs; !reflect.DeepEqual(got, []string{"http1", "http2"}) {
		t.Fatalf("AUTO: %v", got)
	}
	s, err = Parse("x.yaml", []byte(hcm("          codec_type: HTTP2")), registry("http2"))
	if err != nil || !reflect.DeepEqual(streamConfig(t, s.Listeners[0]).Codecs, []string{"http2"}) {
		t.Fatalf("HTTP2: %v", err)
	}

	cases := []struct {
		name, doc string
		reg       *Registry
		want      []string
	}{
		{"auto without http codecs", hcm(""), registry("bolt"), []string{
			`x.yaml: static_resources.listeners[0] ("l"): filter_chains[0].filters[0].typed_config.codec_type: invalid value: AUTO needs an http1 or http2 codec, and this program has none (codecs: bolt)`,
			`x.yaml: static_resources.clusters[0] ("c"): typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].explicit_http_config: invalid value: the http2 codec is not available in this program (codecs: bolt)`,
		}},
		{"no codecs set", hcm("          codec_type: HTTP1"), registry(), []string{
			`codec_type: invalid value: HTTP1 needs the http1 codec, which this program does not have (codecs: none; the program did not call Registry.SetCodecs)`,
			`explicit_http_config: invalid value: the http2 codec is not available in this program (codecs: none; the program did not call Registry.SetCodecs)`,
		}},
		{"http2 options on an HTTP/1 manager", hcm("          codec_type: HTTP1\n          http2_protocol_options: { max_concurrent_streams: 10 }"), registry("http1", "http2"), []string{
			`filter_chains[0].filters[0].typed_config.http2_protocol_options: invalid value: set, but the connection manager does not speak HTTP/2 (codecs: [http1])`,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(tc.doc), tc.reg)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrInvalid) || len(flatten(err)) != len(tc.want) {
				t.Errorf("%d errors (want %d): %v", len(flatten(err)), len(tc.want), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n  %v\nmissing\n  %s", err, w)
				}
			}
		})
	}
}

func TestRequestDispatchReachesEveryStreamManager(t *testing.T) {
	data, err := os.ReadFile("testdata/valid-http-proxy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	inline := bytes.Replace(data, []byte("request_dispatch: pool"), []byte("request_dispatch: inline"), 1)
	if bytes.Equal(inline, data) {
		t.Fatal("the example no longer sets request_dispatch")
	}
	s, err := Parse("x.yaml", inline, testRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	if s.Runtime.RequestDispatch != stream.DispatchInline || streamConfig(t, s.Listeners[0]).Dispatch != stream.DispatchInline {
		t.Fatalf("runtime %v, stream config %v", s.Runtime.RequestDispatch, streamConfig(t, s.Listeners[0]).Dispatch)
	}
	// Without the runtime extension: auto (inline unless a filter may block).
	s, err = parseFile(t, "valid-envoy-demo.yaml", testRegistry(t))
	if err != nil || streamConfig(t, s.Listeners[0]).Dispatch != stream.DispatchAuto {
		t.Fatalf("default dispatch: %v", err)
	}
}

func routeTable(vhs ...*routev3.VirtualHost) *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{Name: "rt", VirtualHosts: vhs}
}

func vhost(routes ...*routev3.Route) *routev3.VirtualHost {
	return &routev3.VirtualHost{Name: "vh", Domains: []string{"*"}, Routes: routes}
}

func toCluster(name string, m *routev3.RouteMatch) *routev3.Route {
	if m == nil {
		m = &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}}
	}
	return &routev3.Route{Match: m, Action: &routev3.Route_Route{Route: &routev3.RouteAction{
		ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: name}}}}
}

// TestTranslateRouteConfiguration covers the route table translation from protos, as RDS
// will deliver them.
func TestTranslateRouteConfiguration(t *testing.T) {
	prefixMatch := func(p string, headers ...*routev3.HeaderMatcher) *routev3.RouteMatch {
		return &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: p}, Headers: headers}
	}
	r := toCluster("c", prefixMatch("/A"))
	r.Match.CaseSensitive = wrapBool(false)
	hv := func(k, v string) *corev3.HeaderValue { return &corev3.HeaderValue{Key: k, Value: v} }
	rc := routeTable(vhost(r))
	rc.ResponseHeadersToAdd = []*corev3.HeaderValueOption{
		{Header: hv("x-a", "100%%")},
		{Header: hv("x-b", "b"), Append: wrapBool(false)},
		{Header: hv("X-C", "c"), AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD},
	}
	rc.RequestHeadersToRemove = []string{"X-Debug"}
	cfg, err := TranslateRouteConfiguration(rc)
	if err != nil {
		t.Fatal(err)
	}
	if m := cfg.VirtualHosts[0].Routes[0].Match; !m.CaseInsensitive || m.Prefix != "/A" {
		t.Errorf("case_sensitive false: %+v", m)
	}
	wantAdd := []router.HeaderValue{{Name: "x-a", Value: "100%", Append: true}, {Name: "x-b", Value: "b"}, {Name: "x-c", Value: "c"}}
	if !reflect.DeepEqual(cfg.ResponseHeadersToAdd, wantAdd) || !reflect.DeepEqual(cfg.RequestHeadersToRemove, []string{"x-debug"}) {
		t.Errorf("header changes (names lower-cased, %%%% unescaped) %+v %v", cfg.ResponseHeadersToAdd, cfg.RequestHeadersToRemove)
	}
	// Envoy's own rules still apply: no CR or LF in a header value.
	crlf := routeTable(vhost(toCluster("c", nil)))
	crlf.ResponseHeadersToAdd = []*corev3.HeaderValueOption{{Header: hv("x-a", "a\r\nx-injected: 1")}}
	if _, err := TranslateRouteConfiguration(crlf); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "HeaderValue.Value") {
		t.Errorf("CRLF in a header value: %v", err)
	}

	// Header matchers, one of each kind.
	sm := func(m *matcherStringMatch) *routev3.HeaderMatcher { return m.matcher() }
	headers := []*routev3.HeaderMatcher{
		sm(&matcherStringMatch{name: "E", exact: "1"}),
		sm(&matcherStringMatch{name: "p", prefix: "a"}),
		sm(&matcherStringMatch{name: "s", suffix: "z"}),
		sm(&matcherStringMatch{name: "c", contains: "m"}),
		sm(&matcherStringMatch{name: "r", regex: "[0-9]+"}),
		{Name: "present", HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}},
		{Name: "absent", HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: false}},
		{Name: "bare"},
		{Name: "not", InvertMatch: true, HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}},
	}
	cfg, err = TranslateRouteConfiguration(routeTable(vhost(toCluster("c", prefixMatch("/", headers...)))))
	if err != nil {
		t.Fatal(err)
	}
	wantHeaders := []router.HeaderMatcher{
		{Name: "e", Kind: router.HeaderExact, Value: "1"},
		{Name: "p", Kind: router.HeaderPrefix, Value: "a"},
		{Name: "s", Kind: router.HeaderSuffix, Value: "z"},
		{Name: "c", Kind: router.HeaderContains, Value: "m"},
		{Name: "r", Kind: router.HeaderRegex, Value: "[0-9]+"},
		{Name: "present", Kind: router.HeaderPresent},
		{Name: "absent", Kind: router.HeaderPresent, Absent: true},
		{Name: "bare", Kind: router.HeaderPresent},
		{Name: "not", Kind: router.HeaderPresent, Invert: true},
	}
	if got := cfg.VirtualHosts[0].Routes[0].Match.Headers; !reflect.DeepEqual(got, wantHeaders) {
		t.Errorf("header matchers\n got %+v\nwant %+v", got, wantHeaders)
	}

	// Timeouts and retries: absent, explicit zero, explicit values.
	action := func(a *routev3.RouteAction) *router.Action {
		t.Helper()
		a.ClusterSpecifier = &routev3.RouteAction_Cluster{Cluster: "c"}
		rt := &routev3.Route{Match: prefixMatch("/"), Action: &routev3.Route_Route{Route: a}}
		cfg, err := TranslateRouteConfiguration(routeTable(vhost(rt)))
		if err != nil {
			t.Fatal(err)
		}
		return cfg.VirtualHosts[0].Routes[0].Action
	}
	if a := action(&routev3.RouteAction{}); a.Timeout != router.DefaultTimeout || a.Retry != nil {
		t.Errorf("defaults: %+v", a)
	}
	if a := action(&routev3.RouteAction{Timeout: durationpb.New(0)}); a.Timeout != 0 {
		t.Errorf("timeout 0s must disable: %v", a.Timeout)
	}
	a := action(&routev3.RouteAction{RetryPolicy: &routev3.RetryPolicy{
		RetryOn: "gateway-error, retriable-status-codes,refused-stream", RetriableStatusCodes: []uint32{409, 503}}})
	if a.Retry == nil || a.Retry.NumRetries != 1 || a.Retry.On != router.RetryGatewayError|router.RetryRetriableStatusCodes|router.RetryRefusedStream ||
		!reflect.DeepEqual(a.Retry.RetriableStatusCodes, []int{409, 503}) {
		t.Errorf("retry policy %+v", a.Retry)
	}
	a = action(&routev3.RouteAction{RetryPolicy: &routev3.RetryPolicy{RetryOn: "reset", NumRetries: wrapUint32(0), PerTryTimeout: durationpb.New(time.Second)}})
	if a.Retry.NumRetries != 0 || a.Retry.PerTryTimeout != time.Second {
		t.Errorf("explicit num_retries 0: %+v", a.Retry)
	}
	a = action(&routev3.RouteAction{HashPolicy: []*routev3.RouteAction_HashPolicy{
		{PolicySpecifier: &routev3.RouteAction_HashPolicy_ConnectionProperties_{ConnectionProperties: &routev3.RouteAction_HashPolicy_ConnectionProperties{SourceIp: true}}, Terminal: true},
		{PolicySpecifier: &routev3.RouteAction_HashPolicy_Header_{Header: &routev3.RouteAction_HashPolicy_Header{HeaderName: "x-user"}}},
	}})
	if !reflect.DeepEqual(a.HashPolicy, []router.HashPolicy{{SourceIP: true, Terminal: true}, {Header: "x-user"}}) {
		t.Errorf("hash policy %+v", a.HashPolicy)
	}

	// Errors name the resource and the field; unsupported alternatives are not also
	// reported as missing.
	bad := routeTable(vhost(
		&routev3.Route{Match: prefixMatch("/"), Action: &routev3.Route_Redirect{Redirect: &routev3.RedirectAction{}}},
		&routev3.Route{Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_ConnectMatcher_{ConnectMatcher: &routev3.RouteMatch_ConnectMatcher{}}},
			Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 700}}},
		&routev3.Route{Match: prefixMatch("/"), Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_ClusterHeader{ClusterHeader: "x-cluster"},
			RetryPolicy:      &routev3.RetryPolicy{RetryOn: "5xx", RetriableStatusCodes: []uint32{99}},
			HashPolicy:       []*routev3.RouteAction_HashPolicy{{}},
		}}},
		&routev3.Route{Action: &routev3.Route_Route{Route: &routev3.RouteAction{}}},
	))
	bad.ValidateClusters = wrapBool(false)
	bad.RequestHeadersToAdd = []*corev3.HeaderValueOption{{Header: hv(":path", "/x"), Append: wrapBool(true), AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD}}
	_, err = TranslateRouteConfiguration(bad)
	wantErrs := []string{
		`route_configuration "rt": validate_clusters: false is not supported by Strait`,
		`route_configuration "rt": request_headers_to_add[0].header.key: invalid value: ":path": pseudo-headers and host cannot be modified`,
		`route_configuration "rt": request_headers_to_add[0]: invalid value: append and append_action are both set`,
		`route_configuration "rt": virtual_hosts[0].routes[0]: field "redirect" is not supported by Strait`,
		`route_configuration "rt": virtual_hosts[0].routes[1].match: field "connect_matcher" is not supported by Strait`,
		`route_configuration "rt": virtual_hosts[0].routes[1].direct_response.status: invalid value: 700 (want 200 to 599)`,
		`route_configuration "rt": virtual_hosts[0].routes[2].route: field "cluster_header" is not supported by Strait`,
		`route_configuration "rt": virtual_hosts[0].routes[2].route.retry_policy.retriable_status_codes[0]: invalid value: 99 is not an HTTP status`,
		`route_configuration "rt": virtual_hosts[0].routes[2].route.hash_policy[0]: invalid value: one of header and connection_properties is required`,
		`route_configuration "rt": virtual_hosts[0].routes[3].match: invalid value: match is required`,
		`route_configuration "rt": virtual_hosts[0].routes[3].route: invalid value: one of cluster and weighted_clusters is required`,
	}
	if err == nil || len(flatten(err)) != len(wantErrs) {
		t.Errorf("%d errors, want %d: %v", len(flatten(err)), len(wantErrs), err)
	}
	for _, w := range wantErrs {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in\n%v", w, err)
		}
	}
	for _, part := range flatten(err) {
		var fe *FieldError
		if !errors.As(part, &fe) || fe.Resource != `route_configuration "rt"` {
			t.Errorf("not located: %#v", part)
		}
	}
}

// TestTranslateHTTPConnectionManagerFromXDS: a connection manager as an xDS client
// receives it (binary, no JSON pass): unsupported fields are named once, with no
// "missing" echo.
func TestTranslateHTTPConnectionManagerFromXDS(t *testing.T) {
	reg := testRegistry(t)
	m := &hcmv3.HttpConnectionManager{
		StatPrefix:     "ads",
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: "r"}},
		HttpFilters: []*hcmv3.HttpFilter{
			{Name: "acme", ConfigType: &hcmv3.HttpFilter_ConfigDiscovery{ConfigDiscovery: &corev3.ExtensionConfigSource{}}},
			{Name: RouterHTTPFilterName, IsOptional: true},
		},
	}
	_, err := TranslateHTTPConnectionManager(m, reg)
	for _, w := range []string{
		`field "rds" is not supported by Strait`,
		`http_filters[0]: field "config_discovery" is not supported by Strait`,
		`http_filters[1]: field "is_optional" is not supported by Strait`,
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in\n%v", w, err)
		}
	}
	if n := len(flatten(err)); n != 3 {
		t.Errorf("%d errors, want 3: %v", n, err)
	}

	// A complete one, with a user HTTP filter, through TranslateListener.
	ts, err := typedStruct(addHeaderURL, map[string]any{"name": "x-from", "value": "strait"})
	if err != nil {
		t.Fatal(err)
	}
	routerAny, _ := anypb.New(&routerRouter{})
	good := &hcmv3.HttpConnectionManager{
		StatPrefix:     "ads",
		CodecType:      hcmv3.HttpConnectionManager_HTTP1,
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: routeTable(vhost(toCluster("c", nil)))},
		HttpFilters: []*hcmv3.HttpFilter{
			{Name: "acme.headers", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: ts}},
			{Name: "router", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: routerAny}},
		},
	}
	hcmAny, _ := anypb.New(good)
	l, err := TranslateListener(xdsListener(t, &listenerv3.Filter{Name: "hcm", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: hcmAny}}), reg)
	if err != nil {
		t.Fatal(err)
	}
	sc := streamConfig(t, l)
	if len(sc.Filters) != 1 || sc.Filters[0].Name != "acme.headers" || !reflect.DeepEqual(sc.Codecs, []string{"http1"}) {
		t.Fatalf("%+v", sc)
	}
	if f, ok := sc.Filters[0].Config.(*addHeaderConfig); !ok || f.Name != "x-from" || f.Value != "strait" {
		t.Fatalf("user filter %#v", sc.Filters[0].Config)
	}
}

func TestRegistryHTTPFilters(t *testing.T) {
	reg := NewRegistry()
	if err := reg.RegisterHTTPFilters(addHeaderFilter()); err != nil {
		t.Fatal(err)
	}
	dec := addHeaderFilter().Decode
	for _, bad := range []HTTPFilter{
		addHeaderFilter(), // twice
		{TypeURL: RouterHTTPFilterTypeURL, Decode: dec},
		{TypeURL: TypedStructURL, Decode: dec},
		{TypeURL: "norouter", Decode: dec},
		{TypeURL: "type.googleapis.com/a.B"},
	} {
		if err := reg.RegisterHTTPFilter(bad.TypeURL, bad.Decode); !errors.Is(err, ErrRegistry) {
			t.Errorf("registration %q accepted: %v", bad.TypeURL, err)
		}
	}
	if got := reg.HTTPFilterTypes(); !reflect.DeepEqual(got, []string{addHeaderURL}) {
		t.Errorf("types %v", got)
	}
	both := HTTPConnectionManagerFilter()
	both.Decode = DecodeTCPProxy
	if err := reg.Register(both); !errors.Is(err, ErrRegistry) {
		t.Errorf("a filter with two decoders: %v", err)
	}
	codecs := []string{"http1", "bolt"}
	reg.SetCodecs(codecs)
	codecs[0] = "changed"
	if got := reg.Codecs(); !reflect.DeepEqual(got, []string{"http1", "bolt"}) {
		t.Errorf("codecs %v (SetCodecs must copy)", got)
	}
}

// TestSnapshotBuildsFactories: what discovery accepts, the data path accepts: every
// listener of the valid L7 configurations builds its stream manager factory against the
// snapshot's cluster manager and the program's codecs.
func TestSnapshotBuildsFactories(t *testing.T) {
	codecs := protocol.NewRegistry()
	for _, name := range testCodecs {
		c := protocol.Codec{
			Name:      name,
			Detect:    func([]byte) protocol.Match { return protocol.No },
			NewServer: func(reactorConn, protocol.Sink) protocol.ServerCodec { return nil },
			NewClient: func(reactorConn) protocol.ClientCodec { return nil },
		}
		if name == "http2" {
			c = http2.NewCodec(http2.Config{}) // the real one: listeners configure it
		}
		if err := codecs.Register(c); err != nil {
			t.Fatal(err)
		}
	}
	for _, file := range []string{"valid-http-proxy.yaml", "valid-bolt-proxy.yaml", "valid-envoy-demo.yaml"} {
		t.Run(file, func(t *testing.T) {
			s, err := parseFile(t, file, testRegistry(t))
			if err != nil {
				t.Fatal(err)
			}
			cm, err := NewClusterManager(s.Clusters, ClusterManagerOptions{Resolver: newFakeResolver(), Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			defer cm.Close()
			deps := &pipeline.Deps{Logger: quiet, Clusters: cm, Transport: unusedTransport{}, Codecs: codecs, Stats: pipeline.NewStats()}
			for _, l := range s.Listeners {
				if err := l.Validate(); err != nil {
					t.Fatal(err)
				}
				for _, f := range l.FilterChain {
					if _, err := f.Config.NewFactory(deps); err != nil {
						t.Errorf("listener %q filter %q: %v", l.Name, f.Name, err)
					}
				}
			}
			for _, c := range cm.Clusters() {
				var cps pipeline.ConnPoolSettings = c
				if !reflect.DeepEqual(cps.ConnPool(), c.Config().ConnPool) {
					t.Errorf("cluster %q: ConnPool() %+v", c.Name(), cps.ConnPool())
				}
			}
		})
	}
}
