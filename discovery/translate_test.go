package discovery

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	xdstypev3 "github.com/cncf/xds/go/xds/type/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/strait-proxy/strait/discovery/lb/maglev"
	"github.com/strait-proxy/strait/discovery/lb/ringhash"
	"github.com/strait-proxy/strait/pipeline"
	"github.com/strait-proxy/strait/pipeline/tcpproxy"
)

// echoConfig is a user extension configured through a TypedStruct.
type echoConfig struct {
	Greeting string   `json:"greeting"`
	Repeat   int      `json:"repeat"`
	Mirror   []string `json:"mirror_clusters"`
}

func (c *echoConfig) Validate() error {
	if c.Repeat < 1 {
		return fmt.Errorf("repeat must be at least 1")
	}
	return nil
}

func (c *echoConfig) NewFactory(*pipeline.Deps) (pipeline.NetworkFilterFactory, error) {
	return func(pipeline.FilterManager) {}, nil
}

func (c *echoConfig) ClusterNames() []string { return c.Mirror }

const echoURL = "type.googleapis.com/acme.echo.v1.Echo"

func echoRegistry(t *testing.T) *Registry {
	reg := testRegistry(t)
	if err := reg.RegisterNetworkFilter(echoURL, TypedStructDecoder(func() *echoConfig { return &echoConfig{} })); err != nil {
		t.Fatal(err)
	}
	return reg
}

func echoBootstrap(value string) string {
	return `
static_resources:
  listeners:
  - name: echo
    address: { socket_address: { address: 127.0.0.1, port_value: 7 } }
    filter_chains:
    - filters:
      - name: acme.echo
        typed_config:
          "@type": type.googleapis.com/xds.type.v3.TypedStruct
          type_url: ` + echoURL + `
          value: ` + value + `
  clusters: [ { name: mirror } ]
`
}

func TestTypedStructExtension(t *testing.T) {
	reg := echoRegistry(t)
	s, err := Parse("echo.yaml", []byte(echoBootstrap(`{ greeting: hi, repeat: 2, mirror_clusters: [mirror] }`)), reg)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := s.Listeners[0].FilterChain[0].Config.(*echoConfig)
	if !ok || got.Greeting != "hi" || got.Repeat != 2 || s.Listeners[0].FilterChain[0].Name != "acme.echo" {
		t.Fatalf("decoded %#v", s.Listeners[0].FilterChain[0])
	}

	cases := []struct {
		value string
		is    error
		want  []string
	}{
		{`{ greting: hi, repeat: 2 }`, ErrUnknownField, []string{
			`echo.yaml: static_resources.listeners[0] ("echo"): filter_chains[0].filters[0].typed_config.value: unknown field "greting" (did you mean "greeting"?)`}},
		{`{ greeting: 5, repeat: 1 }`, ErrInvalid, []string{
			`echo.yaml: static_resources.listeners[0] ("echo"): filter_chains[0].filters[0].typed_config.value.greeting: invalid value: number where string is expected`}},
		{`{ greeting: hi, repeat: 0 }`, nil, []string{
			`echo.yaml: static_resources.listeners[0] ("echo"): filter_chains[0].filters[0].typed_config.value: repeat must be at least 1`}},
		// Every problem at once: an unknown field and a failed validation.
		{`{ extra: 1, repeat: 0 }`, ErrUnknownField, []string{`unknown field "extra"`, `repeat must be at least 1`}},
		// A user filter that names clusters is checked like tcp_proxy (ClusterReferrer).
		{`{ repeat: 1, mirror_clusters: [mirror, shadow] }`, ErrDanglingCluster, []string{
			`echo.yaml: static_resources.listeners[0] ("echo"): filter_chains[0].filters[0].typed_config: undefined cluster "shadow"`}},
	}
	for _, tc := range cases {
		_, err := Parse("echo.yaml", []byte(echoBootstrap(tc.value)), reg)
		if err == nil {
			t.Errorf("%s accepted", tc.value)
			continue
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%s: not %v: %v", tc.value, tc.is, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error\n  %v\nmissing\n  %s", tc.value, err, w)
			}
		}
	}
}

func TestTypedStructDecoderRejectsOtherAny(t *testing.T) {
	dec := TypedStructDecoder(func() *echoConfig { return &echoConfig{} })
	a, _ := anypb.New(&tcpproxyv3.TcpProxy{StatPrefix: "x"})
	if _, err := dec(a); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a non-TypedStruct Any: %v", err)
	}
}

// The translators take protos as an xDS client receives them (no JSON on the way).
func tcpProxyAny(t *testing.T, p *tcpproxyv3.TcpProxy) *anypb.Any {
	a, err := anypb.New(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func xdsListener(t *testing.T, filters ...*listenerv3.Filter) *listenerv3.Listener {
	return &listenerv3.Listener{
		Name: "from-ads",
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: "0.0.0.0", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 15001}}}},
		FilterChains: []*listenerv3.FilterChain{{Filters: filters}},
	}
}

func TestTranslateListenerFromXDS(t *testing.T) {
	reg := testRegistry(t)
	l := xdsListener(t, &listenerv3.Filter{Name: "tcp", ConfigType: &listenerv3.Filter_TypedConfig{
		TypedConfig: tcpProxyAny(t, &tcpproxyv3.TcpProxy{StatPrefix: "ads", ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: "c"},
			IdleTimeout: durationpb.New(0), MaxConnectAttempts: wrapperspb.UInt32(2)})}})
	cfg, err := TranslateListener(l, reg)
	if err != nil {
		t.Fatal(err)
	}
	tp := cfg.FilterChain[0].Config.(*tcpproxy.Config)
	if cfg.Address != "0.0.0.0:15001" || tp.IdleTimeout != 0 || tp.MaxConnectAttempts != 2 {
		t.Fatalf("%+v %+v", cfg, tp)
	}

	// A resource from a newer Envoy carries fields this build does not know: rejected
	// (an xDS client NACKs it) rather than half-applied.
	l.ProtoReflect().SetUnknown([]byte{0xf8, 0x3f, 0x01}) // field 1023, varint 1
	if _, err := TranslateListener(l, reg); !errors.Is(err, ErrUnknownField) || !strings.Contains(err.Error(), `listener "from-ads"`) {
		t.Fatalf("unknown fields: %v", err)
	}

	// A TypedStruct filter nobody registered.
	ts, _ := structpb.NewStruct(map[string]any{"a": 1})
	tsAny, _ := anypb.New(&xdstypev3.TypedStruct{TypeUrl: "type.googleapis.com/x.Y", Value: ts})
	_, err = TranslateListener(xdsListener(t, &listenerv3.Filter{Name: "x", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: tsAny}}), reg)
	if !errors.Is(err, ErrUnknownFilter) || !strings.Contains(err.Error(), `listener "from-ads": filter_chains[0].filters[0].typed_config: unknown filter type "type.googleapis.com/x.Y"`) {
		t.Fatalf("unregistered TypedStruct: %v", err)
	}

	// A filter without typed_config, and a nil registry.
	_, err = TranslateListener(xdsListener(t, &listenerv3.Filter{Name: "bare"}), reg)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "typed_config is required") {
		t.Fatalf("bare filter: %v", err)
	}
	if _, err := TranslateListener(xdsListener(t), nil); !errors.Is(err, ErrRegistry) {
		t.Fatalf("nil registry: %v", err)
	}
}

func staticCluster(name string, eps ...*endpointv3.LbEndpoint) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name: name,
		LoadAssignment: &endpointv3.ClusterLoadAssignment{
			ClusterName: name,
			Endpoints:   []*endpointv3.LocalityLbEndpoints{{LbEndpoints: eps}},
		},
	}
}

func lbEndpoint(host string, port uint32, weight uint32) *endpointv3.LbEndpoint {
	e := &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}}}}
	if weight > 0 {
		e.LoadBalancingWeight = wrapperspb.UInt32(weight)
	}
	return e
}

func TestTranslateClusterFromXDS(t *testing.T) {
	c := staticCluster("web", lbEndpoint("::ffff:10.0.0.1", 80, 0), lbEndpoint("10.0.0.2", 80, 5))
	c.ConnectTimeout = durationpb.New(2 * time.Second)
	c.LbPolicy = clusterv3.Cluster_LEAST_REQUEST
	c.LbConfig = &clusterv3.Cluster_LeastRequestLbConfig_{LeastRequestLbConfig: &clusterv3.Cluster_LeastRequestLbConfig{ChoiceCount: wrapperspb.UInt32(4)}}
	cfg, err := TranslateCluster(c)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Endpoints[0] != (EndpointConfig{"10.0.0.1", 80, 1}) || cfg.Endpoints[1].Weight != 5 || cfg.LeastRequest.ChoiceCount != 4 || cfg.ConnectTimeout != 2*time.Second {
		t.Fatalf("%+v", cfg)
	}

	bad := staticCluster("bad", lbEndpoint("10.0.0.1", 80, 0))
	bad.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}
	bad.OutlierDetection = &clusterv3.OutlierDetection{}
	bad.LbPolicy = clusterv3.Cluster_CLUSTER_PROVIDED
	bad.DnsLookupFamily = clusterv3.Cluster_V6_ONLY
	bad.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{}, {Priority: corev3.RoutingPriority_HIGH}}}
	_, err = TranslateCluster(bad)
	for _, w := range []string{
		`cluster "bad": type: EDS is not supported by Strait`,
		`cluster "bad": field "outlier_detection" is not supported by Strait`,
		`cluster "bad": lb_policy: CLUSTER_PROVIDED is not supported by Strait`,
		`cluster "bad": dns_lookup_family: V6_ONLY is not supported by Strait`,
		`cluster "bad": circuit_breakers.thresholds[1]: field "priority" is not supported by Strait`,
		`cluster "bad": circuit_breakers.thresholds: not supported by Strait: one entry`,
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in\n%v", w, err)
		}
	}

	dns := staticCluster("dns", lbEndpoint("svc.cluster.local", 8080, 0), lbEndpoint("bad name!", 80, 0))
	dns.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS}
	_, err = TranslateCluster(dns)
	if err == nil || !strings.Contains(err.Error(), `lb_endpoints[1].endpoint.address.socket_address.address: invalid value: "bad name!" is neither an IP address nor a DNS name`) || strings.Contains(err.Error(), "svc.cluster.local") {
		t.Fatalf("dns names: %v", err)
	}
}

func TestClusterConfigValidate(t *testing.T) {
	good := ClusterConfig{Name: "c", Endpoints: []EndpointConfig{{"10.0.0.1", 80, 1}}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (&ClusterConfig{Name: "t", Type: 7}).Validate(); err == nil || !strings.Contains(err.Error(), "type: invalid value: ClusterType(7)") {
		t.Errorf("unknown type: %v", err)
	}
	bad := ClusterConfig{Name: "", ConnectTimeout: -1, LBPolicy: Maglev, Maglev: maglev.Config{TableSize: 7},
		RingHash: ringhash.Config{MinRingSize: 1, MaxRingSize: 2}, DNSRefreshRate: time.Second,
		Endpoints: []EndpointConfig{{"host.name", 80, 0}, {"fe80::1%eth0", 80, 1}}}
	err := bad.Validate()
	for _, w := range []string{"name:", "connect_timeout:", "dns_refresh_rate:", "lb_policy: invalid value: ring_hash_lb_config is set", "endpoints[0].weight:", "endpoints[0].address:", "endpoints[1].address:"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in\n%v", w, err)
		}
	}
}
