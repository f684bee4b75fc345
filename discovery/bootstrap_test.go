package discovery

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strait-proxy/strait/discovery/lb/leastrequest"
	"github.com/strait-proxy/strait/discovery/lb/maglev"
	"github.com/strait-proxy/strait/discovery/lb/ringhash"
	"github.com/strait-proxy/strait/pipeline/tcpproxy"
)

// testCodecs are the codec names the test registry knows, as cmd/strait's would.
var testCodecs = []string{"http1", "http2", "bolt"}

// testRegistry has every built-in network filter, the test HTTP filter (acme.headers) and
// testCodecs, as cmd/strait's registry would.
func testRegistry(t testing.TB) *Registry {
	t.Helper()
	reg := NewRegistry()
	reg.SetCodecs(testCodecs)
	if err := reg.Register(TCPProxyFilter(), HTTPConnectionManagerFilter(), RPCProxyFilter()); err != nil {
		t.Fatal(err)
	}
	if err := reg.RegisterHTTPFilters(addHeaderFilter()); err != nil {
		t.Fatal(err)
	}
	return reg
}

func parseFile(t *testing.T, name string, reg *Registry) (*Snapshot, error) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return Parse(name, data, reg)
}

func TestParseCompleteExample(t *testing.T) {
	s, err := parseFile(t, "valid-tcp-proxy.yaml", testRegistry(t))
	if err != nil {
		t.Fatalf("the README example must load: %v", err)
	}
	if !strings.HasPrefix(s.Version, "static-") || s.Admin.GetAddress().GetSocketAddress().GetPortValue() != 9901 {
		t.Fatalf("version %q, admin %v", s.Version, s.Admin)
	}
	if len(s.Listeners) != 1 || len(s.Clusters) != 1 {
		t.Fatalf("%d listeners, %d clusters", len(s.Listeners), len(s.Clusters))
	}
	l := s.Listeners[0]
	if l.Name != "listener_0" || l.Address != "127.0.0.1:10000" || len(l.FilterChain) != 1 {
		t.Fatalf("listener %+v", l)
	}
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	tp, ok := l.FilterChain[0].Config.(*tcpproxy.Config)
	if !ok {
		t.Fatalf("filter config is %T", l.FilterChain[0].Config)
	}
	want := tcpproxy.Config{StatPrefix: "tcp_backend", Cluster: "backend", IdleTimeout: 300 * time.Second,
		MaxConnectAttempts: 3, MaxDownstreamConnectionDuration: time.Hour}
	if tp.StatPrefix != want.StatPrefix || tp.Cluster != want.Cluster || tp.IdleTimeout != want.IdleTimeout ||
		tp.MaxConnectAttempts != want.MaxConnectAttempts || tp.MaxDownstreamConnectionDuration != want.MaxDownstreamConnectionDuration {
		t.Fatalf("tcp_proxy %+v, want %+v", *tp, want)
	}
	c := s.Clusters[0]
	if c.Name != "backend" || c.Type != ClusterStatic || c.ConnectTimeout != time.Second || c.LBPolicy != RoundRobin {
		t.Fatalf("cluster %+v", c)
	}
	if len(c.Endpoints) != 2 || c.Endpoints[0] != (EndpointConfig{"127.0.0.1", 8080, 1}) || c.Endpoints[1] != (EndpointConfig{"127.0.0.1", 8081, 2}) {
		t.Fatalf("endpoints %+v", c.Endpoints)
	}
	if c.CircuitBreakers == nil || *c.CircuitBreakers != (Thresholds{10000, 1024, 1024, 3}) {
		t.Fatalf("thresholds %+v", c.CircuitBreakers)
	}
	wantRT := RuntimeConfig{Transport: TransportGnet, Loops: 2, ReadBufferSize: 16384, HighWatermark: 1 << 20,
		LowWatermark: 256 << 10, MaxReadBuffer: 4 << 20, MaxConnections: 100000, WorkerPoolSize: 10000,
		DrainTimeout: 5 * time.Second, LogLevel: slog.LevelInfo}
	if s.Runtime != wantRT {
		t.Fatalf("runtime %+v, want %+v", s.Runtime, wantRT)
	}
	if o := s.Runtime.ReactorOptions(); o.Loops != 2 || o.MaxConns != 100000 || o.HighWatermark != 1<<20 {
		t.Fatalf("reactor options %+v", o)
	}
}

func TestExampleFileIsTheTestedOne(t *testing.T) {
	ex, err := os.ReadFile("../examples/tcp-proxy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	td, _ := os.ReadFile("testdata/valid-tcp-proxy.yaml")
	if !bytes.Equal(ex, td) {
		t.Fatal("examples/tcp-proxy.yaml and discovery/testdata/valid-tcp-proxy.yaml differ; keep them identical")
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readme, td) {
		t.Fatal("README.md must contain the complete example verbatim")
	}
	if _, err := Load("../examples/tcp-proxy.yaml", testRegistry(t)); err != nil {
		t.Fatal(err)
	}
}

func TestParseEveryClusterFeature(t *testing.T) {
	s, err := parseFile(t, "valid-clusters.yaml", testRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	if s.Node.GetId() != "strait-test" {
		t.Fatalf("node %v", s.Node)
	}
	split := s.Listeners[0].FilterChain[0].Config.(*tcpproxy.Config)
	if s.Listeners[0].Address != "[::1]:10001" || split.StatPrefix != "split" || len(split.WeightedClusters) != 5 || split.IdleTimeout != 0 {
		t.Fatalf("listener %+v, tcp_proxy %+v (idle_timeout 0s must disable, not default)", s.Listeners[0], split)
	}
	if any := s.Listeners[1].FilterChain[0].Config.(*tcpproxy.Config); any.IdleTimeout != tcpproxy.DefaultIdleTimeout || any.MaxConnectAttempts != 1 {
		t.Fatalf("defaults not applied: %+v", any)
	}
	byName := map[string]ClusterConfig{}
	for _, c := range s.Clusters {
		byName[c.Name] = c
	}
	dns := byName["dns"]
	if dns.Type != ClusterStrictDNS || dns.DNSRefreshRate != 10*time.Second || dns.DNSLookupFamily != DNSV4Only ||
		dns.Endpoints[0] != (EndpointConfig{"backend.example.internal", 80, 1}) {
		t.Fatalf("dns cluster %+v", dns)
	}
	if c := byName["least"]; c.LBPolicy != LeastRequest || c.LeastRequest != (leastrequest.Config{ChoiceCount: 3}) || c.Endpoints[1].Weight != 3 {
		t.Fatalf("least %+v", c)
	}
	if c := byName["ring"]; c.LBPolicy != RingHash || c.RingHash != (ringhash.Config{MinRingSize: 2048, MaxRingSize: 65536}) || c.Endpoints[0].Address != "2001:db8::1" {
		t.Fatalf("ring %+v", c)
	}
	if c := byName["maglev"]; c.LBPolicy != Maglev || c.Maglev != (maglev.Config{TableSize: 1009}) {
		t.Fatalf("maglev %+v", c)
	}
	r := byName["random"]
	if r.LBPolicy != Random || r.ConnectTimeout != 250*time.Millisecond || r.CircuitBreakers.MaxRetries != 0 || r.CircuitBreakers.MaxConnections != 1024 {
		t.Fatalf("random %+v thresholds %+v (explicit max_retries 0 must stay 0)", r, r.CircuitBreakers)
	}
	if s.Runtime != (RuntimeConfig{}) {
		t.Fatalf("runtime without the extension must be the zero value, got %+v", s.Runtime)
	}
}

func TestParseJSON(t *testing.T) {
	s, err := parseFile(t, "valid-minimal.json", testRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	if s.Listeners[0].Address != "127.0.0.1:0" || s.Clusters[0].ConnectTimeout != 0 || s.Admin != nil {
		t.Fatalf("%+v %+v", s.Listeners[0], s.Clusters[0])
	}
}

// TestParseInvalid: each bad bootstrap fails with every problem reported, each naming the
// file, the resource and the field.
func TestParseInvalid(t *testing.T) {
	cases := []invalidCase{
		{"invalid-misspelled-field.yaml", []error{ErrUnknownField}, []string{
			`invalid-misspelled-field.yaml: static_resources.listeners[0] ("listener_0"): unknown field "adress" (did you mean "address"?)`,
			`invalid-misspelled-field.yaml: static_resources.listeners[0] ("listener_0"): filter_chains[0].filters[0].typed_config: unknown field "clustr" (did you mean "cluster"?)`,
			`invalid-misspelled-field.yaml: static_resources.clusters[0] ("backend"): load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address: unknown field "port_valu"`,
		}},
		{"invalid-unknown-filter.yaml", []error{ErrUnknownFilter}, []string{
			`invalid-unknown-filter.yaml: static_resources.listeners[0] ("listener_0"): filter_chains[0].filters[0].typed_config: unknown filter type "type.googleapis.com/envoy.extensions.filters.network.echo.v3.Echo" (registered: type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager, type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, type.googleapis.com/strait.filters.network.rpc_proxy.v1.RpcProxy)`,
			`invalid-unknown-filter.yaml: static_resources.listeners[1] ("listener_1"): filter_chains[0].filters[0].typed_config: unknown filter type "type.googleapis.com/acme.filters.v1.Nope"`,
		}},
		{"invalid-dangling-cluster.yaml", []error{ErrDanglingCluster}, []string{
			`invalid-dangling-cluster.yaml: static_resources.listeners[0] ("listener_0"): filter_chains[0].filters[0].typed_config: undefined cluster "backend-canary"`,
		}},
		{"invalid-duplicate-names.yaml", []error{ErrDuplicate}, []string{
			`invalid-duplicate-names.yaml: static_resources.listeners[1] ("listener_0"): name: duplicate listener name "listener_0" (first defined at static_resources.listeners[0] ("listener_0"))`,
			`invalid-duplicate-names.yaml: static_resources.clusters[1] ("backend"): name: duplicate cluster name "backend"`,
			`invalid-duplicate-names.yaml: static_resources.listeners[1] ("listener_0"): address: duplicate address: 127.0.0.1:10000 conflicts with 0.0.0.0:10000`,
		}},
		{"invalid-unsupported-field.yaml", []error{ErrUnsupported}, []string{
			`invalid-unsupported-field.yaml: static_resources: field "secrets" is not supported by Strait`,
			`invalid-unsupported-field.yaml: static_resources.listeners[0] ("listener_0"): field "per_connection_buffer_limit_bytes" is not supported`,
			`invalid-unsupported-field.yaml: static_resources.listeners[0] ("listener_0"): filter_chains[0]: field "filter_chain_match" is not supported`,
			`invalid-unsupported-field.yaml: static_resources.listeners[0] ("listener_0"): filter_chains[0].filters[0].typed_config: field "access_log" is not supported`,
			`invalid-unsupported-field.yaml: static_resources.clusters[0] ("backend"): field "common_lb_config" is not supported`,
			`invalid-unsupported-field.yaml: static_resources.clusters[0] ("backend"): typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].explicit_http_config: field "http3_protocol_options" is not supported`,
			`invalid-unsupported-field.yaml: static_resources.clusters[0] ("backend"): load_assignment.endpoints[0]: field "priority" is not supported`,
		}},
		{"invalid-bad-address.yaml", []error{ErrInvalid}, []string{
			`invalid-bad-address.yaml: static_resources.listeners[0] ("listener_0"): address.socket_address.address: invalid value: "localhost" is not an IP address`,
			`invalid-bad-address.yaml: static_resources.listeners[1] ("listener_1"): address.socket_address.port_value: invalid value: 70000 is above 65535`,
			`invalid-bad-address.yaml: static_resources.clusters[0] ("backend"): load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address: invalid value: "backend.internal" is not an IP address`,
		}},
		{"invalid-runtime-transport.yaml", []error{ErrInvalid, ErrUnknownField, ErrUnsupported}, []string{
			`invalid-runtime-transport.yaml: bootstrap_extensions[0] ("strait.runtime"): typed_config.value.transport: invalid value: "epoll" (want gnet, netpoll or stdnet)`,
			`invalid-runtime-transport.yaml: bootstrap_extensions[0] ("strait.runtime"): typed_config.value: unknown field "drain_timout" (did you mean "drain_timeout"?)`,
			`invalid-runtime-transport.yaml: bootstrap_extensions[1] ("envoy.bootstrap.wasm"): name: bootstrap extension "envoy.bootstrap.wasm" is not supported by Strait`,
		}},
		{"invalid-cluster-settings.yaml", []error{ErrUnsupported, ErrInvalid}, []string{
			`invalid-cluster-settings.yaml: static_resources.clusters[0] ("logical"): type: LOGICAL_DNS is not supported by Strait (STATIC, STRICT_DNS)`,
			`invalid-cluster-settings.yaml: static_resources.clusters[1] ("mismatch"): lb_policy: invalid value: ring_hash_lb_config is set but lb_policy is ROUND_ROBIN`,
			`invalid-cluster-settings.yaml: static_resources.clusters[2] ("maglev"): maglev_lb_config: lb: invalid configuration: maglev table_size 65536 is not prime`,
			`invalid-cluster-settings.yaml: static_resources.clusters[3] ("zero-weight"): load_assignment.endpoints[0].lb_endpoints[0].load_balancing_weight: invalid value: must be at least 1`,
			`invalid-cluster-settings.yaml: static_resources.clusters[3] ("zero-weight"): dns_refresh_rate: invalid value: applies to STRICT_DNS clusters only`,
		}},
	}
	runInvalidCases(t, testRegistry(t), cases)
}

type invalidCase struct {
	file string
	is   []error
	want []string
}

// runInvalidCases parses each file and checks that it fails with exactly the wanted
// errors (one line each), matching the sentinels, each naming its file and resource.
func runInvalidCases(t *testing.T, reg *Registry, cases []invalidCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			s, err := parseFile(t, tc.file, reg)
			if err == nil || s != nil {
				t.Fatalf("accepted: %+v", s)
			}
			msg := err.Error()
			lines := strings.Split(msg, "\n")
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("missing error\n  %s\nin\n  %s", w, strings.Join(lines, "\n  "))
				}
			}
			if len(lines) != len(tc.want) {
				t.Errorf("%d errors, want %d:\n  %s", len(lines), len(tc.want), strings.Join(lines, "\n  "))
			}
			for _, target := range tc.is {
				if !errors.Is(err, target) {
					t.Errorf("errors.Is(err, %v) is false", target)
				}
			}
			for _, part := range flatten(err) {
				var fe *FieldError
				if !errors.As(part, &fe) || fe.File != tc.file || (fe.Resource == "" && !strings.Contains(fe.Error(), "static_resources")) {
					t.Errorf("error without file and resource: %#v", part)
				}
			}
		})
	}
}

func TestParseMalformed(t *testing.T) {
	reg := testRegistry(t)
	listener := func(extra string) string {
		return `
static_resources:
  listeners:
  - name: l
    address: { socket_address: { address: 127.0.0.1, port_value: 1 } }
    filter_chains:
    - filters:
      - name: t
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: t
          cluster: c
` + extra + `
  clusters: [ { name: c } ]
`
	}
	cases := []struct {
		name, doc string
		is        error
		want      string
	}{
		{"empty", "", ErrInvalid, "x.yaml: invalid value: a bootstrap is a mapping of fields, got nothing"},
		{"list", "- a\n- b\n", ErrInvalid, "got a list"},
		{"alias bomb", "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n", ErrRead, "excessive aliasing"},
		{"not yaml", "a: [1, 2\n", ErrRead, "x.yaml: discovery: cannot read bootstrap: not valid YAML or JSON"},
		{"duplicate key", "admin: {}\nadmin: {}\n", ErrRead, `x.yaml: discovery: cannot read bootstrap: not valid YAML or JSON`},
		{"both spellings", "static_resources: {}\nstaticResources: {}\n", ErrDuplicate, `x.yaml: duplicate field: "staticResources" and "static_resources" are the same field`},
		{"unknown top level", "statc_resources: {}\n", ErrUnknownField, `x.yaml: unknown field "statc_resources" (did you mean "static_resources"?)`},
		{"unsupported top level", "dynamic_resources: {}\n", ErrUnsupported, `x.yaml: field "dynamic_resources" is not supported by Strait`},
		{"static_resources not a map", "static_resources: 3\n", ErrInvalid, `x.yaml: static_resources: invalid value: want a mapping, got a number`},
		{"listeners not a list", "static_resources: { listeners: {} }\n", ErrInvalid, `x.yaml: static_resources.listeners: invalid value: want a list, got a mapping`},
		{"wrong value type", listener("          max_connect_attempts: lots"), ErrInvalid, `x.yaml: static_resources.listeners[0] ("l"): invalid value: invalid value for uint32 field value: "lots"`},
		{"any without type", strings.Replace(listener(""), `"@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy`, "", 1), ErrInvalid, `static_resources.listeners[0] ("l"): filter_chains[0].filters[0].typed_config: invalid value: "@type" is required`},
		{"negative duration", listener("          idle_timeout: -1s"), ErrInvalid, `x.yaml: static_resources.listeners[0] ("l"): filter_chains[0].filters[0].typed_config.idle_timeout: invalid value: -1s is negative`},
		{"zero attempts", listener("          max_connect_attempts: 0"), ErrInvalid, `static_resources.listeners[0] ("l"): filter_chains[0].filters[0].typed_config: invalid value: invalid TcpProxy.MaxConnectAttempts: value must be greater than or equal to 1`},
		{"two filter chains", strings.Replace(listener(""), "    filter_chains:\n", "    filter_chains:\n    - filters: []\n", 1), ErrUnsupported, `static_resources.listeners[0] ("l"): filter_chains: 2 filter chains are not supported by Strait (exactly one is)`},
		{"udp listener", strings.Replace(listener(""), "port_value: 1 }", "port_value: 1, protocol: UDP }", 1), ErrUnsupported, `static_resources.listeners[0] ("l"): address.socket_address: field "protocol" is not supported by Strait`},
		{"two runtimes", "bootstrap_extensions:\n- {name: strait.runtime, typed_config: {\"@type\": type.googleapis.com/xds.type.v3.TypedStruct, type_url: type.googleapis.com/strait.config.v1.Runtime}}\n- {name: strait.runtime, typed_config: {\"@type\": type.googleapis.com/xds.type.v3.TypedStruct, type_url: type.googleapis.com/strait.config.v1.Runtime}}\n", ErrDuplicate, `x.yaml: bootstrap_extensions[1] ("strait.runtime"): name: duplicate extension "strait.runtime" (also bootstrap_extensions[0] ("strait.runtime"))`},
		{"runtime wrong type url", "bootstrap_extensions:\n- {name: strait.runtime, typed_config: {\"@type\": type.googleapis.com/xds.type.v3.TypedStruct, type_url: type.googleapis.com/strait.config.v2.Runtime}}\n", ErrInvalid, `bootstrap_extensions[0] ("strait.runtime"): typed_config.type_url: invalid value: "type.googleapis.com/strait.config.v2.Runtime"`},
		{"runtime bad values", "bootstrap_extensions:\n- {name: strait.runtime, typed_config: {\"@type\": type.googleapis.com/xds.type.v3.TypedStruct, type_url: type.googleapis.com/strait.config.v1.Runtime, value: {loops: 1.5, log_level: loud}}}\n", ErrInvalid, `bootstrap_extensions[0] ("strait.runtime"): typed_config.value.loops: invalid value: number 1.5 where int is expected`},
		{"runtime bad duration", "bootstrap_extensions:\n- {name: strait.runtime, typed_config: {\"@type\": type.googleapis.com/xds.type.v3.TypedStruct, type_url: type.googleapis.com/strait.config.v1.Runtime, value: {drain_timeout: soon, log_level: loud}}}\n", ErrInvalid, `typed_config.value.drain_timeout: invalid value: "soon" is not a duration like "5s"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse("x.yaml", []byte(tc.doc), reg)
			if err == nil {
				t.Fatalf("accepted: %+v", s)
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(%v) false for: %v", tc.is, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error\n  %v\ndoes not contain\n  %s", err, tc.want)
			}
		})
	}
}

func TestParseNeedsRegistryAndBoundedInput(t *testing.T) {
	if _, err := Parse("x", []byte("{}"), nil); !errors.Is(err, ErrRegistry) {
		t.Fatalf("nil registry: %v", err)
	}
	big := bytes.Repeat([]byte(" "), MaxBootstrapSize+1)
	if _, err := Parse("x", big, NewRegistry()); !errors.Is(err, ErrRead) {
		t.Fatalf("oversized input: %v", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), NewRegistry()); !errors.Is(err, ErrRead) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	// A bootstrap with nothing in it is valid and empty.
	s, err := Parse("x", []byte("{}"), NewRegistry())
	if err != nil || len(s.Listeners) != 0 || len(s.Clusters) != 0 {
		t.Fatalf("empty bootstrap: %v %+v", err, s)
	}
}

func TestRegistry(t *testing.T) {
	reg := NewRegistry()
	if err := reg.Register(TCPProxyFilter()); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(TCPProxyFilter()); !errors.Is(err, ErrRegistry) || !strings.Contains(err.Error(), "registered twice") {
		t.Fatalf("duplicate registration: %v", err)
	}
	for _, bad := range []NetworkFilter{{TypeURL: "", Decode: DecodeTCPProxy}, {TypeURL: "nourl", Decode: DecodeTCPProxy}, {TypeURL: TypedStructURL, Decode: DecodeTCPProxy}, {TypeURL: "type.googleapis.com/a.B"}} {
		if err := reg.RegisterNetworkFilter(bad.TypeURL, bad.Decode); !errors.Is(err, ErrRegistry) {
			t.Errorf("registration %q accepted: %v", bad.TypeURL, err)
		}
	}
	if got := reg.NetworkFilterTypes(); len(got) != 1 || got[0] != TCPProxyTypeURL {
		t.Fatalf("types %v", got)
	}
	// Nothing is built in: an empty registry knows no filter.
	_, err := parseFile(t, "valid-minimal.json", NewRegistry())
	if !errors.Is(err, ErrUnknownFilter) {
		t.Fatalf("empty registry: %v", err)
	}
}

func TestRuntimeValidate(t *testing.T) {
	ok := RuntimeConfig{Transport: TransportStdnet, HighWatermark: 100, LowWatermark: 10}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := RuntimeConfig{Transport: "io_uring", Loops: -1, GoMaxProcs: -1, LowWatermark: 2 << 20, DrainTimeout: -time.Second, LogLevel: slog.Level(3)}
	err := bad.Validate()
	for _, f := range []string{"transport:", "loops:", "gomaxprocs:", "low_watermark:", "drain_timeout:", "log_level:"} {
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("Validate did not report %s: %v", f, err)
		}
	}
}
