package discovery

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/strait-proxy/strait/pipeline/router"
)

// TranslateRouteConfiguration turns an Envoy route table into the router's configuration.
// The connection manager uses it for its inline route_config; RDS will use it for the
// resources it receives. Supported:
//
//   - name; request_headers_to_add/_remove and response_headers_to_add/_remove at route
//     table, virtual host and route level; validate_clusters true (Strait always checks).
//   - virtual_hosts: name, domains, routes.
//   - routes: name; match {prefix | path | safe_regex.regex, case_sensitive (default true),
//     headers [name, string_match {exact, prefix, suffix, contains, safe_regex},
//     present_match, invert_match]}; route {cluster | weighted_clusters.clusters [name,
//     weight, request_headers_to_add/_remove], timeout (absent: router.DefaultTimeout; 0s
//     disables), prefix_rewrite, host_rewrite_literal, retry_policy {retry_on, num_retries
//     (absent: 1), per_try_timeout, retriable_status_codes}, hash_policy [header.header_name |
//     connection_properties.source_ip, terminal]}; direct_response {status,
//     body.inline_string}.
//
// Every other populated field is an error naming it. Errors are *FieldError values with
// Resource `route_configuration "name"`, joined.
func TranslateRouteConfiguration(rc *routev3.RouteConfiguration) (*router.Config, error) {
	var e errs
	checkSupported(rc.ProtoReflect(), "", &e)
	cfg := translateRouteConfig(rc, &e)
	if len(e.list) == 0 {
		if err := rc.ValidateAll(); err != nil {
			e.add("", fmt.Errorf("%w: %v", ErrInvalid, err))
		}
	}
	if len(e.list) == 0 {
		if err := cfg.Validate(); err != nil {
			e.add("", err)
		}
	}
	if len(e.list) > 0 {
		return nil, errorsIn(fmt.Sprintf("route_configuration %q", rc.GetName()), e.err())
	}
	return cfg, nil
}

// translateRouteConfig translates rc, adding errors (relative to rc) to e. The caller runs
// checkSupported and the proto's own validation.
func translateRouteConfig(rc *routev3.RouteConfiguration, e *errs) *router.Config {
	cfg := &router.Config{Name: rc.GetName()}
	cfg.HeaderMods = headerMods(rc, "", e)
	if v := rc.GetValidateClusters(); v != nil && !v.GetValue() {
		e.add("validate_clusters", fmt.Errorf("false is %w: every cluster a route names must exist", ErrUnsupported))
	}
	for i, vh := range rc.GetVirtualHosts() {
		cfg.VirtualHosts = append(cfg.VirtualHosts, translateVirtualHost(vh, "virtual_hosts["+strconv.Itoa(i)+"]", e))
	}
	return cfg
}

func translateVirtualHost(vh *routev3.VirtualHost, path string, e *errs) router.VirtualHost {
	out := router.VirtualHost{Name: vh.GetName(), Domains: vh.GetDomains()}
	if vh.GetName() == "" {
		e.add(joinPath(path, "name"), fmt.Errorf("%w: a virtual host needs a name", ErrInvalid))
	}
	if len(vh.GetDomains()) == 0 {
		e.add(joinPath(path, "domains"), fmt.Errorf("%w: at least one domain is required (\"*\" matches every host)", ErrInvalid))
	}
	for i, d := range vh.GetDomains() {
		if d == "" || strings.Count(d, "*") > 1 || (strings.Contains(d, "*") && d != "*" && !strings.HasPrefix(d, "*") && !strings.HasSuffix(d, "*")) {
			e.add(fmt.Sprintf("%s.domains[%d]", path, i), fmt.Errorf("%w: %q: a domain is a name, with at most one wildcard as its first or last character", ErrInvalid, d))
		}
	}
	out.HeaderMods = headerMods(vh, path, e)
	for i, r := range vh.GetRoutes() {
		out.Routes = append(out.Routes, translateRoute(r, path+".routes["+strconv.Itoa(i)+"]", e))
	}
	return out
}

func translateRoute(r *routev3.Route, path string, e *errs) router.Route {
	out := router.Route{Name: r.GetName()}
	out.Match = translateMatch(r.GetMatch(), joinPath(path, "match"), e)
	out.HeaderMods = headerMods(r, path, e)
	switch a := r.GetAction().(type) {
	case *routev3.Route_Route:
		out.Action = translateAction(a.Route, out.Match, joinPath(path, "route"), e)
	case *routev3.Route_DirectResponse:
		d := a.DirectResponse
		out.Direct = &router.DirectResponse{Status: int(d.GetStatus()), Body: d.GetBody().GetInlineString()}
		if s := d.GetStatus(); s < 200 || s > 599 {
			e.add(joinPath(path, "direct_response.status"), fmt.Errorf("%w: %d (want 200 to 599)", ErrInvalid, s))
		}
		if b := d.GetBody(); b != nil && b.GetSpecifier() == nil {
			e.add(joinPath(path, "direct_response.body"), missing("inline_string is required"))
		}
	case nil:
		e.add(path, missing("one of route and direct_response is required"))
	default:
		// redirect, filter_action, non_forwarding_action: reported by checkSupported.
	}
	return out
}

func translateMatch(m *routev3.RouteMatch, path string, e *errs) router.Match {
	var out router.Match
	if m == nil {
		e.add(path, missing("match is required (prefix: \"/\" matches every path)"))
		return out
	}
	switch p := m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix:
		out.Prefix = p.Prefix
	case *routev3.RouteMatch_Path:
		out.Path = p.Path
		if p.Path == "" {
			e.add(joinPath(path, "path"), fmt.Errorf("%w: an exact path must not be empty", ErrInvalid))
		}
	case *routev3.RouteMatch_SafeRegex:
		out.Regex = regex(p.SafeRegex, joinPath(path, "safe_regex"), e)
	case nil:
		e.add(path, missing("one of prefix, path and safe_regex is required"))
	default:
		// path_separated_prefix, connect_matcher, path_match_policy: checkSupported.
	}
	if cs := m.GetCaseSensitive(); cs != nil && !cs.GetValue() {
		out.CaseInsensitive = true
	}
	for i, h := range m.GetHeaders() {
		out.Headers = append(out.Headers, translateHeaderMatcher(h, fmt.Sprintf("%s.headers[%d]", path, i), e))
	}
	return out
}

// regex returns a RegexMatcher's expression after checking that it compiles. Go's regexp
// implements RE2's syntax, which is what Envoy's safe_regex uses.
func regex(m *matcherv3.RegexMatcher, path string, e *errs) string {
	re := m.GetRegex()
	if re == "" {
		e.add(joinPath(path, "regex"), fmt.Errorf("%w: the regular expression must not be empty", ErrInvalid))
		return ""
	}
	if _, err := regexp.Compile(re); err != nil {
		e.add(joinPath(path, "regex"), fmt.Errorf("%w: %q: %v", ErrInvalid, re, err))
		return ""
	}
	return re
}

func translateHeaderMatcher(h *routev3.HeaderMatcher, path string, e *errs) router.HeaderMatcher {
	out := router.HeaderMatcher{Name: strings.ToLower(h.GetName()), Invert: h.GetInvertMatch()}
	if h.GetName() == "" {
		e.add(joinPath(path, "name"), fmt.Errorf("%w: a header name is required", ErrInvalid))
	}
	switch s := h.GetHeaderMatchSpecifier().(type) {
	case *routev3.HeaderMatcher_StringMatch:
		sp := joinPath(path, "string_match")
		switch p := s.StringMatch.GetMatchPattern().(type) {
		case *matcherv3.StringMatcher_Exact:
			out.Kind, out.Value = router.HeaderExact, p.Exact
		case *matcherv3.StringMatcher_Prefix:
			out.Kind, out.Value = router.HeaderPrefix, p.Prefix
			if p.Prefix == "" {
				e.add(joinPath(sp, "prefix"), fmt.Errorf("%w: must not be empty", ErrInvalid))
			}
		case *matcherv3.StringMatcher_Suffix:
			out.Kind, out.Value = router.HeaderSuffix, p.Suffix
			if p.Suffix == "" {
				e.add(joinPath(sp, "suffix"), fmt.Errorf("%w: must not be empty", ErrInvalid))
			}
		case *matcherv3.StringMatcher_Contains:
			out.Kind, out.Value = router.HeaderContains, p.Contains
			if p.Contains == "" {
				e.add(joinPath(sp, "contains"), fmt.Errorf("%w: must not be empty", ErrInvalid))
			}
		case *matcherv3.StringMatcher_SafeRegex:
			out.Kind, out.Value = router.HeaderRegex, regex(p.SafeRegex, joinPath(sp, "safe_regex"), e)
		case nil:
			e.add(sp, missing("one of exact, prefix, suffix, contains and safe_regex is required"))
		default:
			// custom: checkSupported.
		}
	case *routev3.HeaderMatcher_PresentMatch:
		out.Kind, out.Absent = router.HeaderPresent, !s.PresentMatch
	case nil:
		// Envoy matches on the header's presence when no specifier is set.
		out.Kind = router.HeaderPresent
	default:
		// The deprecated exact_match, safe_regex_match, prefix_match, ... and range_match:
		// checkSupported.
	}
	return out
}

func translateAction(a *routev3.RouteAction, m router.Match, path string, e *errs) *router.Action {
	out := &router.Action{Timeout: router.DefaultTimeout, PrefixRewrite: a.GetPrefixRewrite(), HostRewrite: a.GetHostRewriteLiteral()}
	switch c := a.GetClusterSpecifier().(type) {
	case *routev3.RouteAction_Cluster:
		out.Cluster = c.Cluster
		if c.Cluster == "" {
			e.add(joinPath(path, "cluster"), fmt.Errorf("%w: must not be empty", ErrInvalid))
		}
	case *routev3.RouteAction_WeightedClusters:
		wp := joinPath(path, "weighted_clusters")
		ws := c.WeightedClusters.GetClusters()
		if len(ws) == 0 {
			e.add(joinPath(wp, "clusters"), fmt.Errorf("%w: at least one cluster is required", ErrInvalid))
		}
		var total uint64
		for i, w := range ws {
			cp := fmt.Sprintf("%s.clusters[%d]", wp, i)
			wc := router.WeightedCluster{Name: w.GetName(), Weight: w.GetWeight().GetValue()}
			if w.GetName() == "" {
				e.add(joinPath(cp, "name"), missing("a cluster name is required"))
			}
			switch {
			case w.GetWeight() == nil:
				e.add(joinPath(cp, "weight"), fmt.Errorf("%w: a weight is required", ErrInvalid))
			case w.GetWeight().GetValue() == 0:
				e.add(joinPath(cp, "weight"), fmt.Errorf("a weight of 0 is %w (remove the cluster from the list instead)", ErrUnsupported))
			}
			total += uint64(wc.Weight)
			wc.RequestHeadersToAdd = headerValues(w.GetRequestHeadersToAdd(), joinPath(cp, "request_headers_to_add"), e)
			wc.RequestHeadersToRemove = headerNames(w.GetRequestHeadersToRemove(), joinPath(cp, "request_headers_to_remove"), e)
			out.WeightedClusters = append(out.WeightedClusters, wc)
		}
		if total > 1<<32-1 {
			e.add(joinPath(wp, "clusters"), fmt.Errorf("%w: the weights add up to %d, above 4294967295", ErrInvalid, total))
		}
	case nil:
		e.add(path, missing("one of cluster and weighted_clusters is required"))
	default:
		// cluster_header, cluster_specifier_plugin, ...: checkSupported.
	}
	if a.GetTimeout() != nil {
		out.Timeout = duration(a.GetTimeout().AsDuration(), joinPath(path, "timeout"), e)
	}
	if out.PrefixRewrite != "" && m.Regex != "" {
		e.add(joinPath(path, "prefix_rewrite"), fmt.Errorf("with a safe_regex match is %w (use a prefix or path match)", ErrUnsupported))
	}
	if a.GetHostRewriteSpecifier() != nil {
		if _, ok := a.GetHostRewriteSpecifier().(*routev3.RouteAction_HostRewriteLiteral); ok && out.HostRewrite == "" {
			e.add(joinPath(path, "host_rewrite_literal"), fmt.Errorf("%w: must not be empty", ErrInvalid))
		}
	}
	if rp := a.GetRetryPolicy(); rp != nil {
		out.Retry = translateRetryPolicy(rp, joinPath(path, "retry_policy"), e)
	}
	for i, h := range a.GetHashPolicy() {
		hp := fmt.Sprintf("%s.hash_policy[%d]", path, i)
		p := router.HashPolicy{Terminal: h.GetTerminal()}
		switch s := h.GetPolicySpecifier().(type) {
		case *routev3.RouteAction_HashPolicy_Header_:
			p.Header = strings.ToLower(s.Header.GetHeaderName())
			if p.Header == "" {
				e.add(joinPath(hp, "header.header_name"), fmt.Errorf("%w: a header name is required", ErrInvalid))
			}
		case *routev3.RouteAction_HashPolicy_ConnectionProperties_:
			p.SourceIP = s.ConnectionProperties.GetSourceIp()
			if !p.SourceIP {
				e.add(joinPath(hp, "connection_properties.source_ip"), fmt.Errorf("%w: must be true (it is the only connection property)", ErrInvalid))
			}
		case nil:
			e.add(hp, missing("one of header and connection_properties is required"))
		default:
			// cookie, query_parameter, filter_state: checkSupported.
		}
		out.HashPolicy = append(out.HashPolicy, p)
	}
	return out
}

// The retry_on conditions Strait implements, and the other ones Envoy knows.
var (
	retryOnTokens = map[string]router.RetryOn{
		"connect-failure":        router.RetryConnectFailure,
		"reset":                  router.RetryReset,
		"5xx":                    router.Retry5xx,
		"gateway-error":          router.RetryGatewayError,
		"retriable-status-codes": router.RetryRetriableStatusCodes,
		"refused-stream":         router.RetryRefusedStream,
	}
	envoyOnlyRetryOn = []string{
		"reset-before-request", "envoy-ratelimited", "retriable-4xx", "retriable-headers",
		"http3-post-connect-failure", "cancelled", "deadline-exceeded", "internal",
		"resource-exhausted", "unavailable",
	}
)

// parseRetryOn parses Envoy's comma-separated retry_on list.
func parseRetryOn(s string) (router.RetryOn, error) {
	var on router.RetryOn
	for tok := range strings.SplitSeq(s, ",") {
		tok = strings.TrimSpace(tok)
		if tok == "" {
			continue
		}
		if bit, ok := retryOnTokens[tok]; ok {
			on |= bit
			continue
		}
		for _, other := range envoyOnlyRetryOn {
			if tok == other {
				return 0, fmt.Errorf("%q is %w (connect-failure, reset, 5xx, gateway-error, retriable-status-codes, refused-stream)", tok, ErrUnsupported)
			}
		}
		return 0, fmt.Errorf("%w: unknown retry condition %q (want connect-failure, reset, 5xx, gateway-error, retriable-status-codes or refused-stream)", ErrInvalid, tok)
	}
	return on, nil
}

func translateRetryPolicy(rp *routev3.RetryPolicy, path string, e *errs) *router.RetryPolicy {
	out := &router.RetryPolicy{NumRetries: 1}
	on, err := parseRetryOn(rp.GetRetryOn())
	if err != nil {
		e.add(joinPath(path, "retry_on"), err)
	}
	out.On = on
	if n := rp.GetNumRetries(); n != nil {
		out.NumRetries = int(n.GetValue())
	}
	if t := rp.GetPerTryTimeout(); t != nil {
		out.PerTryTimeout = duration(t.AsDuration(), joinPath(path, "per_try_timeout"), e)
	}
	for i, s := range rp.GetRetriableStatusCodes() {
		if s < 100 || s > 599 {
			e.add(fmt.Sprintf("%s.retriable_status_codes[%d]", path, i), fmt.Errorf("%w: %d is not an HTTP status", ErrInvalid, s))
			continue
		}
		out.RetriableStatusCodes = append(out.RetriableStatusCodes, int(s))
	}
	return out
}

// Header names are case-insensitive; like Envoy, the translator lower-cases them (HTTP/2
// requires lower-case names on the wire).

// headerModder is what route tables, virtual hosts and routes have in common.
type headerModder interface {
	GetRequestHeadersToAdd() []*corev3.HeaderValueOption
	GetRequestHeadersToRemove() []string
	GetResponseHeadersToAdd() []*corev3.HeaderValueOption
	GetResponseHeadersToRemove() []string
}

func headerMods(m headerModder, path string, e *errs) router.HeaderMods {
	return router.HeaderMods{
		RequestHeadersToAdd:     headerValues(m.GetRequestHeadersToAdd(), joinPath(path, "request_headers_to_add"), e),
		RequestHeadersToRemove:  headerNames(m.GetRequestHeadersToRemove(), joinPath(path, "request_headers_to_remove"), e),
		ResponseHeadersToAdd:    headerValues(m.GetResponseHeadersToAdd(), joinPath(path, "response_headers_to_add"), e),
		ResponseHeadersToRemove: headerNames(m.GetResponseHeadersToRemove(), joinPath(path, "response_headers_to_remove"), e),
	}
}

// modifiable rejects what Envoy refuses to add or remove: pseudo-headers and Host.
func modifiable(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: a header name is required", ErrInvalid)
	case strings.HasPrefix(name, ":") || strings.EqualFold(name, "host"):
		return fmt.Errorf("%w: %q: pseudo-headers and host cannot be modified (use host_rewrite_literal or prefix_rewrite)", ErrInvalid, name)
	}
	return nil
}

func headerNames(names []string, path string, e *errs) []string {
	if len(names) == 0 {
		return nil
	}
	out := make([]string, len(names))
	for i, n := range names {
		if err := modifiable(n); err != nil {
			e.add(path+"["+strconv.Itoa(i)+"]", err)
		}
		out[i] = strings.ToLower(n)
	}
	return out
}

func headerValues(opts []*corev3.HeaderValueOption, path string, e *errs) []router.HeaderValue {
	var out []router.HeaderValue
	for i, o := range opts {
		p := path + "[" + strconv.Itoa(i) + "]"
		h := o.GetHeader()
		if h == nil {
			e.add(p, fmt.Errorf("%w: header is required", ErrInvalid))
			continue
		}
		if err := modifiable(h.GetKey()); err != nil {
			e.add(joinPath(p, "header.key"), err)
		}
		value, err := literalHeaderValue(h.GetValue())
		if err != nil {
			e.add(joinPath(p, "header.value"), err)
		}
		hv := router.HeaderValue{Name: strings.ToLower(h.GetKey()), Value: value, Append: true}
		if o.GetAppend() != nil {
			if o.GetAppendAction() != corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD {
				e.add(p, fmt.Errorf("%w: append and append_action are both set (append is deprecated: keep append_action)", ErrInvalid))
			}
			hv.Append = o.GetAppend().GetValue()
		} else {
			switch act := o.GetAppendAction(); act {
			case corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:
			case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
				hv.Append = false
			default:
				e.add(joinPath(p, "append_action"), fmt.Errorf("%v is %w (APPEND_IF_EXISTS_OR_ADD, OVERWRITE_IF_EXISTS_OR_ADD)", act, ErrUnsupported))
			}
		}
		out = append(out, hv)
	}
	return out
}

// literalHeaderValue undoes Envoy's %% escaping. Envoy substitutes %COMMAND% operators
// (%DOWNSTREAM_REMOTE_ADDRESS%, %REQ(...)%, ...) in header values; Strait does not, so a
// value using one is rejected rather than sent verbatim.
func literalHeaderValue(v string) (string, error) {
	if !strings.Contains(v, "%") {
		return v, nil
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '%' {
			b.WriteByte(v[i])
			continue
		}
		if i+1 < len(v) && v[i+1] == '%' {
			b.WriteByte('%')
			i++
			continue
		}
		return "", fmt.Errorf("%q: Envoy's %%COMMAND%% substitutions are %w (write %%%% for a literal %%)", v, ErrUnsupported)
	}
	return b.String(), nil
}
