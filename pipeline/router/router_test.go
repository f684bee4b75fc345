package router

import (
	"errors"
	"testing"
	"time"

	"github.com/strait-proxy/strait/protocol"
)

func req(host, path string, kv ...string) protocol.Headers {
	h := protocol.NewHeaderList(protocol.Method, "GET", protocol.Authority, host, protocol.Path, path)
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func table() *Config {
	return &Config{
		Name: "local",
		VirtualHosts: []VirtualHost{
			{Name: "api", Domains: []string{"api.example.com"}, Routes: []Route{
				{Name: "v2", Match: Match{Prefix: "/v2/"}, Action: &Action{Cluster: "v2", PrefixRewrite: "/"}},
				{Name: "exact", Match: Match{Path: "/health"}, Direct: &DirectResponse{Status: 200, Body: "ok"}},
				{Name: "re", Match: Match{Regex: `/users/[0-9]+`}, Action: &Action{Cluster: "users"}},
				{Name: "canary", Match: Match{Prefix: "/", Headers: []HeaderMatcher{{Name: "x-canary", Kind: HeaderExact, Value: "1"}}},
					Action: &Action{Cluster: "canary"}},
				{Name: "rest", Match: Match{Prefix: "/"}, Action: &Action{Cluster: "api", Timeout: time.Second}},
			}},
			{Name: "wild", Domains: []string{"*.example.com"}, Routes: []Route{
				{Match: Match{Prefix: "/"}, Action: &Action{Cluster: "wild"}}}},
			{Name: "pre", Domains: []string{"internal.*"}, Routes: []Route{
				{Match: Match{Prefix: "/"}, Action: &Action{Cluster: "pre"}}}},
			{Name: "default", Domains: []string{"*"}, Routes: []Route{
				{Match: Match{Prefix: "/only"}, Action: &Action{Cluster: "default"}}}},
		},
	}
}

func TestRouteSelection(t *testing.T) {
	r, err := New(table())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, host, path string
		kv               []string
		want             string // cluster, "direct", or "" for no route
	}{
		{"prefix", "api.example.com", "/v2/things?x=1", nil, "v2"},
		{"exact path ignores query", "api.example.com", "/health?verbose", nil, "direct"},
		{"exact path is exact", "api.example.com", "/healthz", nil, "api"},
		{"regex full match", "api.example.com", "/users/42", nil, "users"},
		{"regex is anchored", "api.example.com", "/users/42/x", nil, "api"},
		{"header matcher", "api.example.com", "/x", []string{"X-Canary", "1"}, "canary"},
		{"host with port", "API.example.com:8080", "/x", nil, "api"},
		{"suffix wildcard", "a.b.example.com", "/", nil, "wild"},
		{"prefix wildcard", "internal.corp", "/", nil, "pre"},
		{"default host", "other.org", "/only/x", nil, "default"},
		{"no route", "other.org", "/else", nil, ""},
	}
	for _, c := range cases {
		e := r.Route(req(c.host, c.path, c.kv...))
		got := ""
		switch {
		case e == nil:
		case e.Direct != nil:
			got = "direct"
		default:
			got, _ = e.PickCluster()
		}
		if got != c.want {
			t.Errorf("%s: %s%s routed to %q, want %q", c.name, c.host, c.path, got, c.want)
		}
	}
}

func TestPrefixRewrite(t *testing.T) {
	r, _ := New(table())
	e := r.Route(req("api.example.com", "/v2/a/b?q"))
	if p, ok := e.RewritePath("/v2/a/b?q"); !ok || p != "/a/b?q" {
		t.Fatalf("rewrite = %q %v", p, ok)
	}
}

func TestWeightedClustersFollowWeights(t *testing.T) {
	c := &Config{VirtualHosts: []VirtualHost{{Name: "v", Domains: []string{"*"}, Routes: []Route{{
		Match:  Match{Prefix: "/"},
		Action: &Action{WeightedClusters: []WeightedCluster{{Name: "a", Weight: 80}, {Name: "b", Weight: 20}}},
	}}}}}
	r, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	e := r.Route(req("x", "/"))
	counts := map[string]int{}
	for i := 0; i < 20000; i++ {
		n, _ := e.PickCluster()
		counts[n]++
	}
	if a := counts["a"]; a < 15400 || a > 16600 {
		t.Fatalf("80/20 split gave %v", counts)
	}
}

func TestValidateRejects(t *testing.T) {
	bad := []*Config{
		{VirtualHosts: []VirtualHost{{Name: "v", Domains: []string{"*"}, Routes: []Route{{Match: Match{Prefix: "/", Path: "/x"}, Action: &Action{Cluster: "c"}}}}}},
		{VirtualHosts: []VirtualHost{{Name: "v", Domains: []string{"*"}, Routes: []Route{{Match: Match{Regex: "("}, Action: &Action{Cluster: "c"}}}}}},
		{VirtualHosts: []VirtualHost{{Name: "v", Domains: []string{"*"}, Routes: []Route{{Match: Match{Prefix: "/"}}}}}},
		{VirtualHosts: []VirtualHost{{Name: "v", Domains: []string{"a*b"}, Routes: nil}}},
		{VirtualHosts: []VirtualHost{{Name: "v", Domains: []string{"x"}}, {Name: "w", Domains: []string{"X"}}}},
	}
	for i, c := range bad {
		if _, err := New(c); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("config %d: got %v, want ErrInvalidConfig", i, err)
		}
	}
}

func BenchmarkRoute(b *testing.B) {
	r, _ := New(table())
	h := req("api.example.com", "/users/42")
	b.ReportAllocs()
	for b.Loop() {
		if r.Route(h) == nil {
			b.Fatal("no route")
		}
	}
}
