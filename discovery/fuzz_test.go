package discovery

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	xdstypev3 "github.com/cncf/xds/go/xds/type/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"sigs.k8s.io/yaml"

	"github.com/strait-proxy/strait/pipeline/router"
	"github.com/strait-proxy/strait/pipeline/stream"
)

// FuzzParse feeds arbitrary bytes to the bootstrap parser: it must never panic, every error
// must be one of the package's located errors, and whatever it accepts must validate. Its
// seeds are every testdata file: the bootstraps with HTTP connection managers
// (valid-http-proxy.yaml, valid-envoy-demo.yaml, invalid-route-*.yaml, ...) and RPC proxies
// among them.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.*")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("{}"))
	f.Add([]byte(`{"static_resources":{"clusters":[{"name":"c","type":"STRICT_DNS","lb_policy":"MAGLEV"}]}}`))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Add([]byte(`{"static_resources":{"listeners":[{"name":"h","address":{"socket_address":{"address":"127.0.0.1","port_value":1}},"filter_chains":[{"filters":[{"name":"hcm","typed_config":{"@type":"` + HTTPConnectionManagerTypeURL + `","stat_prefix":"s","http_filters":[{"name":"envoy.filters.http.router"}],"route_config":{"virtual_hosts":[{"name":"v","domains":["*"],"routes":[{"match":{"prefix":"/"},"route":{"cluster":"c"}}]}]}}}]}]}],"clusters":[{"name":"c"}]}}`))
	reg := testRegistry(f)
	sentinels := []error{ErrUnknownField, ErrUnsupported, ErrInvalid, ErrUnknownFilter, ErrUnknownType,
		ErrDanglingCluster, ErrDuplicate, ErrRead}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz.yaml", data, reg)
		if err != nil {
			if s != nil {
				t.Fatal("a snapshot returned with an error")
			}
			for _, part := range flatten(err) {
				if !strings.HasPrefix(part.Error(), "fuzz.yaml: ") {
					t.Fatalf("error does not name the file: %q", part)
				}
				known := false
				for _, s := range sentinels {
					known = known || errors.Is(part, s)
				}
				var fe *FieldError
				if !known && !errors.As(part, &fe) {
					t.Fatalf("error matches no sentinel: %q", part)
				}
			}
			return
		}
		for _, l := range s.Listeners {
			if err := l.Validate(); err != nil {
				t.Fatalf("accepted listener does not validate: %v", err)
			}
		}
		for _, c := range s.Clusters {
			if err := c.Validate(); err != nil {
				t.Fatalf("accepted cluster does not validate: %v", err)
			}
		}
		if err := s.Runtime.Validate(); err != nil {
			t.Fatalf("accepted runtime does not validate: %v", err)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile("testdata/valid-clusters.yaml")
	if err != nil {
		b.Fatal(err)
	}
	reg := testRegistry(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("valid-clusters.yaml", data, reg); err != nil {
			b.Fatal(err)
		}
	}
}

// l7Seeds extracts JSON seeds from the valid L7 bootstraps: every route_config and every
// RPC proxy value.
func l7Seeds(f *testing.F) (routes, rpc [][]byte) {
	f.Helper()
	files, err := filepath.Glob("testdata/valid-*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if k == "route_config" {
					if b, err := json.Marshal(e); err == nil {
						routes = append(routes, b)
					}
				}
				if k == "type_url" && e == RPCProxyTypeURL {
					if b, err := json.Marshal(x["value"]); err == nil {
						rpc = append(rpc, b)
					}
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		js, err := yaml.YAMLToJSON(data)
		if err != nil {
			f.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(js, &v); err != nil {
			f.Fatal(err)
		}
		walk(v)
	}
	if len(routes) == 0 || len(rpc) == 0 {
		f.Fatalf("no L7 seeds: %d route tables, %d rpc proxies", len(routes), len(rpc))
	}
	return routes, rpc
}

// FuzzRouteConfiguration feeds route tables (protojson, or binary protobuf when the first
// byte is 0) to TranslateRouteConfiguration: it must never panic, its errors must be
// located, and whatever it accepts must compile into a router.
func FuzzRouteConfiguration(f *testing.F) {
	routes, _ := l7Seeds(f)
	for _, r := range routes {
		f.Add(r)
	}
	f.Add([]byte(`{"virtual_hosts":[{"name":"v","domains":["*.a","b.*"],"routes":[{"match":{"safe_regex":{"regex":"(a|b)*"},"headers":[{"name":"x","string_match":{"safe_regex":{"regex":"["}}}]},"route":{"cluster":"c","prefix_rewrite":"/"}}]}]}`))
	f.Add([]byte{0, 0x0a, 0x01, 'r'})
	f.Fuzz(func(t *testing.T, data []byte) {
		var rc routev3.RouteConfiguration
		var err error
		if len(data) > 0 && data[0] == 0 {
			err = proto.Unmarshal(data[1:], &rc)
		} else {
			err = protojson.Unmarshal(data, &rc)
		}
		if err != nil {
			return
		}
		cfg, err := TranslateRouteConfiguration(&rc)
		if err != nil {
			for _, part := range flatten(err) {
				var fe *FieldError
				if !errors.As(part, &fe) || !strings.HasPrefix(fe.Resource, "route_configuration ") {
					t.Fatalf("error not located: %q", part)
				}
			}
			return
		}
		if _, err := router.New(cfg); err != nil {
			t.Fatalf("accepted a table the router rejects: %v", err)
		}
	})
}

// FuzzRPCProxy feeds RPC proxy values (the TypedStruct's JSON value) to DecodeRPCProxy: it
// must never panic, its errors must carry our sentinels, and whatever it accepts must
// validate and compile.
func FuzzRPCProxy(f *testing.F) {
	_, rpc := l7Seeds(f)
	for _, r := range rpc {
		f.Add(r)
	}
	f.Add([]byte(`{"stat_prefix":"s","protocol":"bolt","routes":[{"match":{"headers":[{"name":"a","regex":"(","present":true}]},"route":{"weighted_clusters":[{"name":"a","weight":4294967295},{"name":"b","weight":4294967295}]}}]}`))
	f.Add([]byte(`{"max_streams":1e300,"idle_timeout":5,"routes":{}}`))
	reg := testRegistry(f)
	sentinels := []error{ErrUnknownField, ErrUnsupported, ErrInvalid}
	f.Fuzz(func(t *testing.T, data []byte) {
		var s structpb.Struct
		if err := protojson.Unmarshal(data, &s); err != nil {
			return
		}
		a, err := anypb.New(&xdstypev3.TypedStruct{TypeUrl: RPCProxyTypeURL, Value: &s})
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := DecodeRPCProxy(reg, a)
		if err != nil {
			for _, part := range flatten(err) {
				known := false
				for _, s := range sentinels {
					known = known || errors.Is(part, s)
				}
				var fe *FieldError
				if !known || !errors.As(part, &fe) || !strings.HasPrefix(fe.Field, "value") {
					t.Fatalf("error without sentinel or field: %q", part)
				}
			}
			return
		}
		sc := cfg.(*stream.Config)
		if err := sc.Validate(); err != nil {
			t.Fatalf("accepted config does not validate: %v", err)
		}
		if _, err := router.New(sc.Route); err != nil {
			t.Fatalf("accepted a table the router rejects: %v", err)
		}
	})
}

func BenchmarkParseHTTPProxy(b *testing.B) {
	data, err := os.ReadFile("testdata/valid-http-proxy.yaml")
	if err != nil {
		b.Fatal(err)
	}
	reg := testRegistry(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("valid-http-proxy.yaml", data, reg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTranslateRouteConfiguration measures what an RDS update costs: a 100-route
// table translated from its proto.
func BenchmarkTranslateRouteConfiguration(b *testing.B) {
	var routes []*routev3.Route
	for i := range 100 {
		r := toCluster(fmt.Sprintf("c%d", i%10), &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: fmt.Sprintf("/svc%d/", i)}})
		r.GetRoute().RetryPolicy = &routev3.RetryPolicy{RetryOn: "connect-failure,5xx"}
		routes = append(routes, r)
	}
	rc := routeTable(vhost(routes...))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := TranslateRouteConfiguration(rc); err != nil {
			b.Fatal(err)
		}
	}
}
