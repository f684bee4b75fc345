package discovery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"

	"github.com/bytedance/gopkg/util/xxhash3"
	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"sigs.k8s.io/yaml"

	"github.com/strait-proxy/strait/pipeline"
	"github.com/strait-proxy/strait/pipeline/router"
	"github.com/strait-proxy/strait/pipeline/stream"
)

// MaxBootstrapSize bounds a bootstrap file.
const MaxBootstrapSize = 16 << 20

// Snapshot is one complete, validated configuration. It is immutable once built: nothing
// may modify it or the slices it holds, so it can be shared and swapped atomically.
type Snapshot struct {
	// Version identifies the configuration ("static-<hash of the file>" for a bootstrap).
	Version string
	// Runtime is the strait.runtime extension (zero value if absent).
	Runtime   RuntimeConfig
	Listeners []pipeline.ListenerConfig
	Clusters  []ClusterConfig
	// Admin is the bootstrap's admin section, kept as decoded and otherwise ignored until
	// Strait has an admin server.
	Admin *bootstrapv3.Admin
	// Node is the bootstrap's node identity (nil if absent); the xDS client will send it.
	Node *corev3.Node
}

// Load reads and parses a bootstrap file (YAML or JSON). Errors name path.
func Load(path string, reg *Registry) (*Snapshot, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRead, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxBootstrapSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrRead, path, err)
	}
	return Parse(path, data, reg)
}

// Parse decodes a bootstrap (YAML or JSON) named name (used in errors) into a Snapshot,
// translating filters through reg. All errors are reported together (errors.Join of
// *FieldError); a snapshot is returned only when there are none.
func Parse(name string, data []byte, reg *Registry) (*Snapshot, error) {
	if reg == nil {
		return nil, fmt.Errorf("%w: Parse needs a filter registry", ErrRegistry)
	}
	if len(data) > MaxBootstrapSize {
		return nil, fmt.Errorf("%w: %s: larger than %d bytes", ErrRead, name, MaxBootstrapSize)
	}
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, &FieldError{File: name, Err: fmt.Errorf("%w: not valid YAML or JSON: %v", ErrRead, err)}
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var top any
	if err := dec.Decode(&top); err != nil {
		return nil, &FieldError{File: name, Err: fmt.Errorf("%w: %v", ErrRead, err)}
	}
	obj, ok := top.(map[string]any)
	if !ok {
		return nil, &FieldError{File: name, Err: fmt.Errorf("%w: a bootstrap is a mapping of fields, got %s", ErrInvalid, jsonKind(top))}
	}
	p := &parser{file: name, reg: reg, snap: &Snapshot{Version: fmt.Sprintf("static-%016x", xxhash3.Hash(data))}}
	p.bootstrap(obj)
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return p.snap, nil
}

type parser struct {
	file string
	reg  *Registry
	snap *Snapshot
	errs []error
	// removed says the last decode dropped unsupported fields (see missingError).
	removed bool
}

func (p *parser) fail(resource, field string, err error) {
	p.errs = append(p.errs, &FieldError{File: p.file, Resource: resource, Field: field, Err: err})
}

func (p *parser) failIn(resource string, err error) {
	p.errs = append(p.errs, located(p.file, resource, err)...)
}

// failTranslated reports a translator's errors for the resource decoded last, leaving out
// those that the removal of unsupported fields caused (see missingError).
func (p *parser) failTranslated(resource string, err error) {
	if p.removed {
		err = errors.Join(withoutMissing(err)...)
	}
	p.failIn(resource, err)
}

// fields maps an object's keys to md's fields in key order, reporting unknown and
// duplicate (JSON name and proto name both used) keys.
func (p *parser) fields(obj map[string]any, md protoreflect.MessageDescriptor, resource string) []keyed {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	seen := map[protoreflect.Name]string{}
	var out []keyed
	for _, k := range keys {
		fd := fieldByKey(md, k)
		if fd == nil {
			p.fail(resource, "", fmt.Errorf("%w %q%s", ErrUnknownField, k, suggest(md, k)))
			continue
		}
		if prev, dup := seen[fd.Name()]; dup {
			p.fail(resource, "", fmt.Errorf("%w field: %q and %q are the same field", ErrDuplicate, prev, k))
			continue
		}
		seen[fd.Name()] = k
		out = append(out, keyed{fd.Name(), k, obj[k]})
	}
	return out
}

type keyed struct {
	name protoreflect.Name
	key  string
	val  any
}

func (p *parser) bootstrap(obj map[string]any) {
	var staticRes, exts any
	for _, f := range p.fields(obj, (&bootstrapv3.Bootstrap{}).ProtoReflect().Descriptor(), "") {
		switch f.name {
		case "static_resources":
			staticRes = f.val
		case "bootstrap_extensions":
			exts = f.val
		case "admin":
			var a bootstrapv3.Admin
			if p.decode(f.val, &a, f.key) {
				p.snap.Admin = &a
			}
		case "node":
			var n corev3.Node
			if p.decode(f.val, &n, f.key) {
				p.snap.Node = &n
			}
		default:
			p.fail("", "", fmt.Errorf("field %q is %w", f.key, ErrUnsupported))
		}
	}
	p.extensions(exts)
	p.staticResources(staticRes)
}

// decode checks v's keys against msg's fields, then decodes it with protojson. It reports
// every error in resource and returns whether msg is usable for further checks: unsupported
// fields are dropped and decoding goes on (so one run reports everything), while unknown
// fields stop it (a typo would otherwise cascade into "missing field" errors).
func (p *parser) decode(v any, msg proto.Message, resource string) bool {
	var l errs
	c := jsonChecker{l: &l, unknownAny: func(parent protoreflect.FullName, url string) error {
		switch parent {
		case "envoy.config.listener.v3.Filter":
			return p.reg.unknownFilter(url)
		case "envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter":
			return p.reg.unknownHTTPFilter(url)
		}
		return fmt.Errorf("%w %q", ErrUnknownType, url)
	}}
	c.check(v, msg.ProtoReflect().Descriptor(), "")
	p.removed = c.removed > 0
	if len(l.list) > 0 {
		p.failIn(resource, l.err())
		for _, e := range l.list {
			if !errors.Is(e, ErrUnsupported) {
				return false
			}
		}
	}
	raw, err := json.Marshal(v)
	if err == nil {
		err = protojson.UnmarshalOptions{}.Unmarshal(raw, msg)
	}
	if err != nil {
		p.fail(resource, "", fmt.Errorf("%w: %s", ErrInvalid, cleanProtoError(err)))
		return false
	}
	return true
}

var protoErrPrefix = regexp.MustCompile(`^proto:[\s\x{00a0}]*(\(line \d+:\d+\):[\s\x{00a0}]*)?`)

// cleanProtoError drops protojson's "proto: (line 1:23): " prefix: the position is in the
// re-encoded resource, not in the user's file.
func cleanProtoError(err error) string {
	return protoErrPrefix.ReplaceAllString(err.Error(), "")
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "nothing (empty document)"
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%T", v)
}

func (p *parser) list(v any, resource string) []any {
	if v == nil {
		return nil
	}
	arr, ok := v.([]any)
	if !ok {
		p.fail(resource, "", fmt.Errorf("%w: want a list, got %s", ErrInvalid, jsonKind(v)))
		return nil
	}
	return arr
}

// resourceLabel is `path[i] ("name")`, or `path[i]` when the element has no string name.
func resourceLabel(path string, i int, v any) (label, name string) {
	label = path + "[" + strconv.Itoa(i) + "]"
	if obj, ok := v.(map[string]any); ok {
		if n, ok := obj["name"].(string); ok {
			return label + " (" + strconv.Quote(n) + ")", n
		}
	}
	return label, ""
}

func (p *parser) extensions(v any) {
	runtimeAt := ""
	for i, e := range p.list(v, "bootstrap_extensions") {
		res, _ := resourceLabel("bootstrap_extensions", i, e)
		var ext corev3.TypedExtensionConfig
		if !p.decode(e, &ext, res) {
			continue
		}
		if ext.GetName() == RuntimeExtensionName && runtimeAt != "" {
			p.fail(res, "name", fmt.Errorf("%w extension %q (also %s)", ErrDuplicate, ext.GetName(), runtimeAt))
			continue
		}
		rt, err := TranslateRuntime(&ext)
		if err != nil {
			p.failIn(res, err)
			continue
		}
		runtimeAt = res
		p.snap.Runtime = rt
	}
}

type placed struct {
	res  string
	name string
}

func (p *parser) staticResources(v any) {
	if v == nil {
		return
	}
	obj, ok := v.(map[string]any)
	if !ok {
		p.fail("static_resources", "", fmt.Errorf("%w: want a mapping, got %s", ErrInvalid, jsonKind(v)))
		return
	}
	var listeners, clusters any
	for _, f := range p.fields(obj, (&bootstrapv3.Bootstrap_StaticResources{}).ProtoReflect().Descriptor(), "static_resources") {
		switch f.name {
		case "listeners":
			listeners = f.val
		case "clusters":
			clusters = f.val
		default:
			p.fail("static_resources", "", fmt.Errorf("field %q is %w", f.key, ErrUnsupported))
		}
	}

	// Clusters: translate each, then reject duplicate names. A cluster that failed to
	// translate still defines its name, so that its listeners do not report it as dangling.
	defined := map[string]string{}
	for i, e := range p.list(clusters, "static_resources.clusters") {
		res, name := resourceLabel("static_resources.clusters", i, e)
		if first, dup := defined[name]; dup && name != "" {
			p.fail(res, "name", fmt.Errorf("%w cluster name %q (first defined at %s)", ErrDuplicate, name, first))
		} else if name != "" {
			defined[name] = res
		}
		var c clusterv3.Cluster
		if !p.decode(e, &c, res) {
			continue
		}
		cfg, err := TranslateCluster(&c)
		if err != nil {
			p.failTranslated(res, err)
			continue
		}
		if proto := cfg.ConnPool.Protocol; proto != "" && proto != pipeline.ProtocolDownstream && !p.reg.hasCodec(proto) {
			p.fail(res, "typed_extension_protocol_options["+strconv.Quote(HTTPProtocolOptionsKey)+"].explicit_http_config",
				fmt.Errorf("%w: the %s codec is not available in this program (codecs: %s)", ErrInvalid, proto, p.reg.codecList()))
			continue
		}
		p.snap.Clusters = append(p.snap.Clusters, cfg)
	}

	// Listeners: translate, then check names, addresses and cluster references.
	names := map[string]string{}
	type bound struct {
		ap  netip.AddrPort
		res string
	}
	var addrs []bound
	for i, e := range p.list(listeners, "static_resources.listeners") {
		res, name := resourceLabel("static_resources.listeners", i, e)
		if first, dup := names[name]; dup && name != "" {
			p.fail(res, "name", fmt.Errorf("%w listener name %q (first defined at %s)", ErrDuplicate, name, first))
		} else if name != "" {
			names[name] = res
		}
		var l listenerv3.Listener
		if !p.decode(e, &l, res) {
			continue
		}
		cfg, err := TranslateListener(&l, p.reg)
		if err != nil {
			p.failTranslated(res, err)
			continue
		}
		ApplyRuntime(cfg, p.snap.Runtime)
		if ap, err := netip.ParseAddrPort(cfg.Address); err == nil && ap.Port() != 0 {
			for _, b := range addrs {
				if overlaps(b.ap, ap) {
					p.fail(res, "address", fmt.Errorf("%w address: %s conflicts with %s of %s", ErrDuplicate, ap, b.ap, b.res))
					break
				}
			}
			addrs = append(addrs, bound{ap, res})
		}
		for j, f := range cfg.FilterChain {
			field := fmt.Sprintf("filter_chains[0].filters[%d].typed_config", j)
			dangling := func(where, cn string) {
				if _, ok := defined[cn]; !ok {
					p.fail(res, field, fmt.Errorf("%s%w %q (not in static_resources.clusters)", where, ErrDanglingCluster, cn))
				}
			}
			if sc, ok := f.Config.(*stream.Config); ok {
				// Name the filter, virtual host and route that use the cluster.
				for _, ref := range routeClusterRefs(sc.Route) {
					dangling(fmt.Sprintf("filter %q: %s: ", f.Name, ref.where), ref.cluster)
				}
				continue
			}
			if cr, ok := f.Config.(ClusterReferrer); ok {
				for _, cn := range cr.ClusterNames() {
					dangling("", cn)
				}
			}
		}
		p.snap.Listeners = append(p.snap.Listeners, cfg)
	}
}

// overlaps reports whether two listen addresses cannot both be bound: the same port and the
// same IP, or a wildcard IP covering the other (:: also covers IPv4 on a dual-stack host).
func overlaps(a, b netip.AddrPort) bool {
	if a.Port() != b.Port() {
		return false
	}
	x, y := a.Addr(), b.Addr()
	if x == y {
		return true
	}
	wild := func(w, o netip.Addr) bool {
		return w.IsUnspecified() && (w.Is6() || o.Is4())
	}
	return wild(x, y) || wild(y, x)
}

// clusterRef is one cluster a route table names, and where.
type clusterRef struct {
	cluster string
	where   string // `virtual host "x" (virtual_hosts[0]), route "y" (routes[1])`
}

// routeClusterRefs lists the clusters of a route table with the virtual host and route
// that name them, in table order.
func routeClusterRefs(c *router.Config) []clusterRef {
	if c == nil {
		return nil
	}
	var out []clusterRef
	for i, vh := range c.VirtualHosts {
		for j, r := range vh.Routes {
			if r.Action == nil {
				continue
			}
			where := fmt.Sprintf("virtual host %q (virtual_hosts[%d]), route routes[%d]", vh.Name, i, j)
			if r.Name != "" {
				where = fmt.Sprintf("virtual host %q (virtual_hosts[%d]), route %q (routes[%d])", vh.Name, i, r.Name, j)
			}
			if r.Action.Cluster != "" {
				out = append(out, clusterRef{r.Action.Cluster, where})
			}
			for k, w := range r.Action.WeightedClusters {
				out = append(out, clusterRef{w.Name, fmt.Sprintf("%s, weighted cluster %d", where, k)})
			}
		}
	}
	return out
}
