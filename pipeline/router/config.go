// Package router matches requests to routes: virtual hosts chosen by domain, routes matched by
// path (prefix, exact, regex) and headers, and the route's action (forward to a cluster or a
// weighted set of clusters, answer directly) with its timeouts, retry policy, rewrites and
// header changes. It is Envoy's RouteConfiguration, compiled once per configuration snapshot
// into an immutable Router that any number of goroutines may use.
//
// Who may call it: the configuration translators build Config; the stream manager compiles it
// with New and calls Router.Route per request. RPC protocols route the same way on the
// pseudo-header :path, which their codecs fill with the service name (Bolt: the class name).
package router

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// ErrInvalidConfig wraps every validation error of a route configuration.
var ErrInvalidConfig = errors.New("router: invalid configuration")

// DefaultTimeout is Envoy's route timeout when none is configured.
const DefaultTimeout = 15 * time.Second

// Config is one route table (Envoy's RouteConfiguration).
type Config struct {
	Name         string
	VirtualHosts []VirtualHost
	HeaderMods
}

// HeaderMods are header changes applied at route table, virtual host or route level. Changes
// of the most specific level are applied last.
type HeaderMods struct {
	RequestHeadersToAdd     []HeaderValue
	RequestHeadersToRemove  []string
	ResponseHeadersToAdd    []HeaderValue
	ResponseHeadersToRemove []string
}

// HeaderValue is a header to add. With Append false it replaces existing values.
type HeaderValue struct {
	Name   string
	Value  string
	Append bool
}

// VirtualHost groups routes for a set of domains.
type VirtualHost struct {
	Name string
	// Domains are exact names ("example.com", optionally with ":port"), suffix wildcards
	// ("*.example.com"), prefix wildcards ("example.*") or "*" for the default host. An
	// exact match wins over the longest suffix wildcard, which wins over the longest prefix
	// wildcard, which wins over "*".
	Domains []string
	Routes  []Route
	HeaderMods
}

// Route is one match and its action.
type Route struct {
	Name  string
	Match Match
	// Exactly one of Action and Direct is set.
	Action *Action
	Direct *DirectResponse
	HeaderMods
}

// Match selects requests by path and headers. Exactly one of Prefix, Path and Regex is set
// (Prefix "" with the others empty matches every path).
type Match struct {
	Prefix string
	Path   string
	Regex  string
	// CaseInsensitive makes Prefix and Path comparisons ignore ASCII case.
	CaseInsensitive bool
	Headers         []HeaderMatcher
}

// HeaderMatcherKind says how a HeaderMatcher compares.
type HeaderMatcherKind uint8

// Header matcher kinds (Envoy's HeaderMatcher.header_match_specifier).
const (
	HeaderExact HeaderMatcherKind = iota
	HeaderPrefix
	HeaderSuffix
	HeaderContains
	HeaderRegex
	HeaderPresent
)

// HeaderMatcher matches one header. Present with Value "" matches presence; Invert negates
// the result.
type HeaderMatcher struct {
	Name   string
	Kind   HeaderMatcherKind
	Value  string
	Invert bool
	// Absent, with Kind HeaderPresent, matches when the header is missing.
	Absent bool
}

// Action forwards the request upstream.
type Action struct {
	// Exactly one of Cluster and WeightedClusters is set.
	Cluster          string
	WeightedClusters []WeightedCluster
	// Timeout bounds the whole request, retries included; 0 disables it.
	Timeout time.Duration
	// PrefixRewrite replaces the matched prefix (or the whole path for Path matches).
	PrefixRewrite string
	// HostRewrite replaces :authority (Host) sent upstream.
	HostRewrite string
	Retry       *RetryPolicy
	// HashPolicy produces the hash ring hash and Maglev clusters balance on; the first
	// policy that yields a value wins.
	HashPolicy []HashPolicy
}

// WeightedCluster is one entry of Action.WeightedClusters.
type WeightedCluster struct {
	Name   string
	Weight uint32
	HeaderMods
}

// RetryOn is a set of retry conditions.
type RetryOn uint16

// Retry conditions (Envoy's x-envoy-retry-on values).
const (
	RetryConnectFailure       RetryOn = 1 << iota // upstream connect failed or timed out
	RetryReset                                    // upstream reset or closed before a response
	Retry5xx                                      // any 5xx response (and what Reset covers)
	RetryGatewayError                             // 502, 503, 504
	RetryRetriableStatusCodes                     // statuses listed in RetriableStatusCodes
	RetryRefusedStream                            // HTTP/2 REFUSED_STREAM
)

// RetryPolicy says when and how often to retry.
type RetryPolicy struct {
	On         RetryOn
	NumRetries int
	// PerTryTimeout bounds each attempt; 0 means only the route timeout applies.
	PerTryTimeout        time.Duration
	RetriableStatusCodes []int
}

// HashPolicy names what to hash for consistent-hash load balancing.
type HashPolicy struct {
	// Header hashes this request header's value; empty with SourceIP false is invalid.
	Header string
	// SourceIP hashes the downstream client's address.
	SourceIP bool
	// Terminal stops evaluating further policies when this one produced a hash.
	Terminal bool
}

// DirectResponse answers without an upstream.
type DirectResponse struct {
	Status int
	Body   string
}

// Validate checks the whole table.
func (c *Config) Validate() error {
	var errs []error
	seenDomain := map[string]string{}
	for i := range c.VirtualHosts {
		vh := &c.VirtualHosts[i]
		where := fmt.Sprintf("virtual_hosts[%d] (%s)", i, vh.Name)
		if vh.Name == "" {
			errs = append(errs, fmt.Errorf("%w: %s: name is required", ErrInvalidConfig, where))
		}
		if len(vh.Domains) == 0 {
			errs = append(errs, fmt.Errorf("%w: %s: at least one domain is required", ErrInvalidConfig, where))
		}
		for _, d := range vh.Domains {
			key := strings.ToLower(d)
			if other, dup := seenDomain[key]; dup {
				errs = append(errs, fmt.Errorf("%w: %s: domain %q is also used by virtual host %q", ErrInvalidConfig, where, d, other))
			}
			seenDomain[key] = vh.Name
			if strings.Count(d, "*") > 1 || (strings.Contains(d, "*") && d != "*" &&
				!strings.HasPrefix(d, "*") && !strings.HasSuffix(d, "*")) {
				errs = append(errs, fmt.Errorf("%w: %s: domain %q: a wildcard must be the first or last character", ErrInvalidConfig, where, d))
			}
		}
		for j := range vh.Routes {
			if err := vh.Routes[j].validate(); err != nil {
				errs = append(errs, fmt.Errorf("%s: routes[%d] (%s): %w", where, j, vh.Routes[j].Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (r *Route) validate() error {
	m := &r.Match
	set := 0
	for _, s := range []string{m.Prefix, m.Path, m.Regex} {
		if s != "" {
			set++
		}
	}
	if set > 1 {
		return fmt.Errorf("%w: match: only one of prefix, path and safe_regex may be set", ErrInvalidConfig)
	}
	if m.Regex != "" {
		if _, err := regexp.Compile(m.Regex); err != nil {
			return fmt.Errorf("%w: match.safe_regex: %v", ErrInvalidConfig, err)
		}
	}
	for i, h := range m.Headers {
		if h.Name == "" {
			return fmt.Errorf("%w: match.headers[%d]: name is required", ErrInvalidConfig, i)
		}
		if h.Kind == HeaderRegex {
			if _, err := regexp.Compile(h.Value); err != nil {
				return fmt.Errorf("%w: match.headers[%d] (%s): %v", ErrInvalidConfig, i, h.Name, err)
			}
		}
	}
	if (r.Action == nil) == (r.Direct == nil) {
		return fmt.Errorf("%w: exactly one of route and direct_response must be set", ErrInvalidConfig)
	}
	if d := r.Direct; d != nil && (d.Status < 200 || d.Status > 599) {
		return fmt.Errorf("%w: direct_response.status %d out of range", ErrInvalidConfig, d.Status)
	}
	if a := r.Action; a != nil {
		if (a.Cluster == "") == (len(a.WeightedClusters) == 0) {
			return fmt.Errorf("%w: route: exactly one of cluster and weighted_clusters must be set", ErrInvalidConfig)
		}
		var total uint64
		for i, w := range a.WeightedClusters {
			if w.Name == "" || w.Weight == 0 {
				return fmt.Errorf("%w: route.weighted_clusters.clusters[%d]: name and a positive weight are required", ErrInvalidConfig, i)
			}
			total += uint64(w.Weight)
		}
		if total > 1<<32-1 {
			return fmt.Errorf("%w: route.weighted_clusters: total weight overflows", ErrInvalidConfig)
		}
		if a.Timeout < 0 {
			return fmt.Errorf("%w: route.timeout must not be negative", ErrInvalidConfig)
		}
		if p := a.Retry; p != nil {
			if p.NumRetries < 0 || p.PerTryTimeout < 0 {
				return fmt.Errorf("%w: route.retry_policy: negative values", ErrInvalidConfig)
			}
			for _, s := range p.RetriableStatusCodes {
				if s < 100 || s > 599 {
					return fmt.Errorf("%w: route.retry_policy.retriable_status_codes: %d out of range", ErrInvalidConfig, s)
				}
			}
		}
		for i, h := range a.HashPolicy {
			if h.Header == "" && !h.SourceIP {
				return fmt.Errorf("%w: route.hash_policy[%d]: header or connection_properties.source_ip is required", ErrInvalidConfig, i)
			}
		}
	}
	return nil
}

// ClusterNames lists every cluster the table routes to.
func (c *Config) ClusterNames() []string {
	var out []string
	for _, vh := range c.VirtualHosts {
		for _, r := range vh.Routes {
			if r.Action == nil {
				continue
			}
			if r.Action.Cluster != "" {
				out = append(out, r.Action.Cluster)
			}
			for _, w := range r.Action.WeightedClusters {
				out = append(out, w.Name)
			}
		}
	}
	return out
}
