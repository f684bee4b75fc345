package discovery

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// ErrUnknownType: an Any's @type that no linked protobuf type has.
var ErrUnknownType = errors.New("unknown type URL")

// jsonChecker finds the keys of a generic JSON value that are not fields of the protobuf
// message it will be decoded into, with their full paths and every one of them reported
// (protojson stops at the first and names no path).
type jsonChecker struct {
	l *errs
	// removed counts the unsupported fields deleted from the value (see checkObject).
	removed int
	// unknownAny reports an Any whose @type is not linked in; parent is the message holding
	// the Any field. Nil means ErrUnknownType.
	unknownAny func(parent protoreflect.FullName, url string) error
}

// wellKnownJSON lists the types protojson encodes as something other than an object of
// their fields; their content is not walked.
func wellKnownJSON(name protoreflect.FullName) bool {
	switch name {
	case "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue",
		"google.protobuf.Duration", "google.protobuf.Timestamp", "google.protobuf.FieldMask",
		"google.protobuf.Empty", "google.protobuf.BoolValue", "google.protobuf.BytesValue",
		"google.protobuf.DoubleValue", "google.protobuf.FloatValue", "google.protobuf.Int32Value",
		"google.protobuf.Int64Value", "google.protobuf.StringValue", "google.protobuf.UInt32Value",
		"google.protobuf.UInt64Value":
		return true
	}
	return false
}

func (c *jsonChecker) check(v any, md protoreflect.MessageDescriptor, path string) {
	c.checkObject(v, md, path, false)
}

// checkObject walks one object; inAny skips the "@type" key of an Any's content.
func (c *jsonChecker) checkObject(v any, md protoreflect.MessageDescriptor, path string, inAny bool) {
	if wellKnownJSON(md.FullName()) {
		return
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return // wrong JSON type: protojson reports it with the field name
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if inAny && k == "@type" {
			continue
		}
		val := obj[k]
		fd := fieldByKey(md, k)
		if fd == nil {
			c.l.add(path, fmt.Errorf("%w %q%s", ErrUnknownField, k, suggest(md, k)))
			continue
		}
		fpath := joinPath(path, k)
		if fd.Message() != nil && !fieldSupported(md.FullName(), fd.Name()) {
			// Not implemented: say so rather than inspecting content Strait will reject
			// anyway (it may hold types that are not even linked in).
			// The key is dropped so that decoding can go on and report further problems.
			c.l.add(path, fmt.Errorf("field %q is %w", k, ErrUnsupported))
			delete(obj, k)
			c.removed++
			continue
		}
		switch {
		case fd.IsMap():
			vm, ok := val.(map[string]any)
			if !ok || fd.MapValue().Message() == nil {
				continue
			}
			mkeys := make([]string, 0, len(vm))
			for mk := range vm {
				mkeys = append(mkeys, mk)
			}
			slices.Sort(mkeys)
			for _, mk := range mkeys {
				c.checkValue(vm[mk], fd.MapValue().Message(), md.FullName(), fpath+"["+strconv.Quote(mk)+"]")
			}
		case fd.Message() == nil:
		case fd.IsList():
			arr, ok := val.([]any)
			if !ok {
				continue
			}
			for i, e := range arr {
				c.checkValue(e, fd.Message(), md.FullName(), fpath+"["+strconv.Itoa(i)+"]")
			}
		default:
			c.checkValue(val, fd.Message(), md.FullName(), fpath)
		}
	}
}

func (c *jsonChecker) checkValue(v any, md protoreflect.MessageDescriptor, parent protoreflect.FullName, path string) {
	if md.FullName() != "google.protobuf.Any" {
		c.check(v, md, path)
		return
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return
	}
	url, _ := obj["@type"].(string)
	if url == "" {
		c.l.add(path, fmt.Errorf("%w: \"@type\" is required", ErrInvalid))
		return
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByURL(url)
	if err != nil {
		if c.unknownAny != nil {
			c.l.add(path, c.unknownAny(parent, url))
		} else {
			c.l.add(path, fmt.Errorf("%w %q", ErrUnknownType, url))
		}
		return
	}
	inner := mt.Descriptor()
	if wellKnownJSON(inner.FullName()) {
		return
	}
	c.checkObject(obj, inner, path, true)
}

// fieldByKey finds a field by its JSON name or its proto name, as protojson accepts both.
func fieldByKey(md protoreflect.MessageDescriptor, k string) protoreflect.FieldDescriptor {
	fields := md.Fields()
	if fd := fields.ByJSONName(k); fd != nil {
		return fd
	}
	if fd := fields.ByName(protoreflect.Name(k)); fd != nil && !fd.IsExtension() {
		return fd
	}
	return nil
}

// suggest returns ` (did you mean "x"?)` for the closest field name, if close enough.
func suggest(md protoreflect.MessageDescriptor, k string) string {
	best, bestD := "", len(k)/3+1
	fields := md.Fields()
	for i := range fields.Len() {
		name := string(fields.Get(i).Name())
		if d := editDistance(strings.ToLower(k), name); d < bestD {
			best, bestD = name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return max(len(a), len(b))
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// supportedFields is the allowlist: for each message Strait inspects, the fields it
// implements. A populated field outside the list is rejected, so no configuration is
// silently ignored. Messages not listed (durations, wrappers, Any, admin) are leaves:
// their parent's allowlist decides whether they may appear at all.
func supportedFields(name protoreflect.FullName) ([]string, bool) {
	switch name {
	case "envoy.config.listener.v3.Listener":
		return []string{"name", "address", "filter_chains"}, true
	case "envoy.config.core.v3.Address":
		return []string{"socket_address"}, true
	case "envoy.config.core.v3.SocketAddress":
		// protocol is absent for TCP (the default); port_value is the only port form.
		return []string{"address", "port_value"}, true
	case "envoy.config.listener.v3.FilterChain":
		return []string{"name", "filters"}, true
	case "envoy.config.listener.v3.Filter":
		return []string{"name", "typed_config"}, true
	case "envoy.config.cluster.v3.Cluster":
		return []string{
			"name", "type", "connect_timeout", "lb_policy", "least_request_lb_config",
			"ring_hash_lb_config", "maglev_lb_config", "load_assignment", "circuit_breakers",
			"dns_refresh_rate", "dns_lookup_family", "typed_extension_protocol_options",
		}, true
	case "envoy.config.cluster.v3.Cluster.LeastRequestLbConfig":
		return []string{"choice_count"}, true
	case "envoy.config.cluster.v3.Cluster.RingHashLbConfig":
		return []string{"minimum_ring_size", "maximum_ring_size"}, true
	case "envoy.config.cluster.v3.Cluster.MaglevLbConfig":
		return []string{"table_size"}, true
	case "envoy.config.endpoint.v3.ClusterLoadAssignment":
		return []string{"cluster_name", "endpoints"}, true
	case "envoy.config.endpoint.v3.LocalityLbEndpoints":
		// priority is absent for priority 0, the only one supported.
		return []string{"lb_endpoints"}, true
	case "envoy.config.endpoint.v3.LbEndpoint":
		return []string{"endpoint", "load_balancing_weight"}, true
	case "envoy.config.endpoint.v3.Endpoint":
		return []string{"address"}, true
	case "envoy.config.cluster.v3.CircuitBreakers":
		return []string{"thresholds"}, true
	case "envoy.config.cluster.v3.CircuitBreakers.Thresholds":
		// priority is absent for DEFAULT, the only one supported.
		return []string{"max_connections", "max_pending_requests", "max_requests", "max_retries"}, true
	case "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy":
		return []string{
			"stat_prefix", "cluster", "weighted_clusters", "idle_timeout",
			"max_connect_attempts", "max_downstream_connection_duration",
		}, true
	case "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.WeightedCluster":
		return []string{"clusters"}, true
	case "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.WeightedCluster.ClusterWeight":
		return []string{"name", "weight"}, true
	case "envoy.config.core.v3.TypedExtensionConfig":
		return []string{"name", "typed_config"}, true

	// Upstream HTTP protocol options (clusters' typed_extension_protocol_options).
	case "envoy.extensions.upstreams.http.v3.HttpProtocolOptions":
		return []string{"common_http_protocol_options", "explicit_http_config", "use_downstream_protocol_config"}, true
	case "envoy.extensions.upstreams.http.v3.HttpProtocolOptions.ExplicitHttpConfig",
		"envoy.extensions.upstreams.http.v3.HttpProtocolOptions.UseDownstreamHttpConfig":
		return []string{"http_protocol_options", "http2_protocol_options"}, true
	case "envoy.config.core.v3.HttpProtocolOptions":
		return []string{"idle_timeout", "max_requests_per_connection"}, true
	case "envoy.config.core.v3.Http1ProtocolOptions":
		return []string{}, true
	case "envoy.config.core.v3.Http2ProtocolOptions":
		// Mapped onto http2.Config by translateHTTP2Options.
		return []string{
			"hpack_table_size", "max_concurrent_streams", "initial_stream_window_size",
			"initial_connection_window_size", "max_outbound_frames", "max_outbound_control_frames",
			"max_consecutive_inbound_frames_with_empty_payload", "max_inbound_priority_frames_per_stream",
			"max_inbound_window_update_frames_per_data_frame_sent",
		}, true

	// HTTP connection manager.
	case "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager":
		return []string{
			"codec_type", "stat_prefix", "route_config", "http_filters", "common_http_protocol_options",
			"http2_protocol_options", "stream_idle_timeout",
		}, true
	case "envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter":
		return []string{"name", "typed_config"}, true
	case "envoy.extensions.filters.http.router.v3.Router":
		return []string{}, true

	// Route tables (inline route_config; RDS later).
	case "envoy.config.route.v3.RouteConfiguration":
		return []string{
			"name", "virtual_hosts", "request_headers_to_add", "request_headers_to_remove",
			"response_headers_to_add", "response_headers_to_remove", "validate_clusters",
		}, true
	case "envoy.config.route.v3.VirtualHost":
		return []string{
			"name", "domains", "routes", "request_headers_to_add", "request_headers_to_remove",
			"response_headers_to_add", "response_headers_to_remove",
		}, true
	case "envoy.config.route.v3.Route":
		return []string{
			"name", "match", "route", "direct_response", "request_headers_to_add",
			"request_headers_to_remove", "response_headers_to_add", "response_headers_to_remove",
		}, true
	case "envoy.config.route.v3.RouteMatch":
		return []string{"prefix", "path", "safe_regex", "case_sensitive", "headers"}, true
	case "envoy.type.matcher.v3.RegexMatcher":
		return []string{"google_re2", "regex"}, true
	case "envoy.type.matcher.v3.RegexMatcher.GoogleRE2":
		return []string{}, true
	case "envoy.config.route.v3.HeaderMatcher":
		return []string{"name", "string_match", "present_match", "invert_match"}, true
	case "envoy.type.matcher.v3.StringMatcher":
		return []string{"exact", "prefix", "suffix", "contains", "safe_regex"}, true
	case "envoy.config.route.v3.RouteAction":
		return []string{
			"cluster", "weighted_clusters", "timeout", "prefix_rewrite", "host_rewrite_literal",
			"retry_policy", "hash_policy",
		}, true
	case "envoy.config.route.v3.WeightedCluster":
		return []string{"clusters"}, true
	case "envoy.config.route.v3.WeightedCluster.ClusterWeight":
		return []string{"name", "weight", "request_headers_to_add", "request_headers_to_remove"}, true
	case "envoy.config.route.v3.RetryPolicy":
		return []string{"retry_on", "num_retries", "per_try_timeout", "retriable_status_codes"}, true
	case "envoy.config.route.v3.RouteAction.HashPolicy":
		return []string{"header", "connection_properties", "terminal"}, true
	case "envoy.config.route.v3.RouteAction.HashPolicy.Header":
		return []string{"header_name"}, true
	case "envoy.config.route.v3.RouteAction.HashPolicy.ConnectionProperties":
		return []string{"source_ip"}, true
	case "envoy.config.route.v3.DirectResponseAction":
		return []string{"status", "body"}, true
	case "envoy.config.core.v3.DataSource":
		return []string{"inline_string"}, true
	case "envoy.config.core.v3.HeaderValueOption":
		return []string{"header", "append", "append_action"}, true
	case "envoy.config.core.v3.HeaderValue":
		return []string{"key", "value"}, true
	}
	return nil, false
}

// fieldSupported reports whether field of message name is allowlisted (true for messages
// without an allowlist).
func fieldSupported(name protoreflect.FullName, field protoreflect.Name) bool {
	allowed, ok := supportedFields(name)
	return !ok || slices.Contains(allowed, string(field))
}

// checkSupported reports every populated field of m (recursively through allowlisted
// messages) that Strait does not implement, and unknown fields kept from binary decoding
// (a resource from a newer API version over xDS).
func checkSupported(m protoreflect.Message, path string, l *errs) {
	allowed, walk := supportedFields(m.Descriptor().FullName())
	if !walk {
		return
	}
	if len(m.GetUnknown()) > 0 {
		l.add(path, fmt.Errorf("%w: fields unknown to this Envoy API version", ErrUnknownField))
	}
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if !m.Has(fd) {
			continue
		}
		name := string(fd.Name())
		if !slices.Contains(allowed, name) {
			l.add(path, fmt.Errorf("field %q is %w", name, ErrUnsupported))
			continue
		}
		if fd.Message() == nil || fd.IsMap() {
			continue
		}
		v := m.Get(fd)
		fpath := joinPath(path, name)
		if fd.IsList() {
			list := v.List()
			for j := range list.Len() {
				checkSupported(list.Get(j).Message(), fpath+"["+strconv.Itoa(j)+"]", l)
			}
			continue
		}
		checkSupported(v.Message(), fpath, l)
	}
}
