package router

import (
	"regexp"
	"sort"
	"strings"

	"github.com/bytedance/gopkg/lang/fastrand"

	"github.com/strait-proxy/strait/protocol"
)

// Router is a compiled, immutable route table.
type Router struct {
	name   string
	exact  map[string]*vhost
	suffix []wildcard // "*.example.com", longest first
	prefix []wildcard // "example.*", longest first
	def    *vhost
}

type wildcard struct {
	part string // ".example.com" or "example."
	vh   *vhost
}

type vhost struct {
	name   string
	routes []*Entry
}

// Entry is a compiled route: what Route returns for a request.
type Entry struct {
	Name        string
	VirtualHost string
	// Action is set for forwarding routes, Direct for direct responses.
	Action *Action
	Direct *DirectResponse
	// Header changes of route table, virtual host and route, in that order.
	RequestHeadersToAdd     []HeaderValue
	RequestHeadersToRemove  []string
	ResponseHeadersToAdd    []HeaderValue
	ResponseHeadersToRemove []string

	match       Match
	re          *regexp.Regexp
	headers     []headerMatcher
	totalWeight uint32
}

type headerMatcher struct {
	HeaderMatcher
	re *regexp.Regexp
}

// New validates and compiles a route table.
func New(c *Config) (*Router, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	r := &Router{name: c.Name, exact: map[string]*vhost{}}
	for i := range c.VirtualHosts {
		v := &c.VirtualHosts[i]
		vh := &vhost{name: v.Name}
		for j := range v.Routes {
			vh.routes = append(vh.routes, compileRoute(c, v, &v.Routes[j]))
		}
		for _, d := range v.Domains {
			d = strings.ToLower(d)
			switch {
			case d == "*":
				r.def = vh
			case strings.HasPrefix(d, "*"):
				r.suffix = append(r.suffix, wildcard{d[1:], vh})
			case strings.HasSuffix(d, "*"):
				r.prefix = append(r.prefix, wildcard{d[:len(d)-1], vh})
			default:
				r.exact[d] = vh
			}
		}
	}
	byLen := func(w []wildcard) func(i, j int) bool {
		return func(i, j int) bool { return len(w[i].part) > len(w[j].part) }
	}
	sort.SliceStable(r.suffix, byLen(r.suffix))
	sort.SliceStable(r.prefix, byLen(r.prefix))
	return r, nil
}

func compileRoute(c *Config, v *VirtualHost, rt *Route) *Entry {
	e := &Entry{Name: rt.Name, VirtualHost: v.Name, Action: rt.Action, Direct: rt.Direct, match: rt.Match}
	for _, m := range []*HeaderMods{&c.HeaderMods, &v.HeaderMods, &rt.HeaderMods} {
		e.RequestHeadersToAdd = append(e.RequestHeadersToAdd, m.RequestHeadersToAdd...)
		e.RequestHeadersToRemove = append(e.RequestHeadersToRemove, m.RequestHeadersToRemove...)
		e.ResponseHeadersToAdd = append(e.ResponseHeadersToAdd, m.ResponseHeadersToAdd...)
		e.ResponseHeadersToRemove = append(e.ResponseHeadersToRemove, m.ResponseHeadersToRemove...)
	}
	if rt.Match.Regex != "" {
		e.re = regexp.MustCompile("^(?:" + rt.Match.Regex + ")$") // validated by Config.Validate
	}
	for _, h := range rt.Match.Headers {
		hm := headerMatcher{HeaderMatcher: h}
		if h.Kind == HeaderRegex {
			hm.re = regexp.MustCompile("^(?:" + h.Value + ")$")
		}
		e.headers = append(e.headers, hm)
	}
	if rt.Action != nil {
		for _, w := range rt.Action.WeightedClusters {
			e.totalWeight += w.Weight
		}
	}
	return e
}

// Name is the route table's name.
func (r *Router) Name() string { return r.name }

// Route returns the first route of the request's virtual host that matches, or nil (the
// caller answers 404).
func (r *Router) Route(h protocol.Headers) *Entry {
	host, _ := h.Get(protocol.Authority)
	vh := r.virtualHost(host)
	if vh == nil {
		return nil
	}
	path, _ := h.Get(protocol.Path)
	for _, e := range vh.routes {
		if e.matches(path, h) {
			return e
		}
	}
	return nil
}

func (r *Router) virtualHost(host string) *vhost {
	if len(r.exact) > 0 || len(r.suffix) > 0 || len(r.prefix) > 0 {
		host = lowerASCII(host)
		if vh := r.lookupHost(host); vh != nil {
			return vh
		}
		if i := strings.LastIndexByte(host, ':'); i > 0 && !strings.HasSuffix(host, "]") {
			if vh := r.lookupHost(host[:i]); vh != nil {
				return vh
			}
		}
	}
	return r.def
}

func (r *Router) lookupHost(host string) *vhost {
	if vh, ok := r.exact[host]; ok {
		return vh
	}
	for _, w := range r.suffix {
		if len(host) > len(w.part) && strings.HasSuffix(host, w.part) {
			return w.vh
		}
	}
	for _, w := range r.prefix {
		if len(host) > len(w.part) && strings.HasPrefix(host, w.part) {
			return w.vh
		}
	}
	return nil
}

func (e *Entry) matches(path string, h protocol.Headers) bool {
	m := &e.match
	switch {
	case m.Prefix != "":
		if !hasPrefix(path, m.Prefix, m.CaseInsensitive) {
			return false
		}
	case m.Path != "":
		p := stripQuery(path)
		if m.CaseInsensitive {
			if !strings.EqualFold(p, m.Path) {
				return false
			}
		} else if p != m.Path {
			return false
		}
	case e.re != nil:
		if !e.re.MatchString(stripQuery(path)) {
			return false
		}
	}
	for i := range e.headers {
		if !e.headers[i].matches(h) {
			return false
		}
	}
	return true
}

func (m *headerMatcher) matches(h protocol.Headers) bool {
	v, ok := h.Get(m.Name)
	var res bool
	switch m.Kind {
	case HeaderPresent:
		res = ok != m.Absent
	case HeaderExact:
		res = ok && v == m.Value
	case HeaderPrefix:
		res = ok && strings.HasPrefix(v, m.Value)
	case HeaderSuffix:
		res = ok && strings.HasSuffix(v, m.Value)
	case HeaderContains:
		res = ok && strings.Contains(v, m.Value)
	case HeaderRegex:
		res = ok && m.re.MatchString(v)
	}
	return res != m.Invert
}

// PickCluster returns the cluster for one request: the route's cluster, or a weighted pick,
// with the picked entry's header changes (nil for a plain cluster).
func (e *Entry) PickCluster() (string, *WeightedCluster) {
	a := e.Action
	if a.Cluster != "" {
		return a.Cluster, nil
	}
	n := fastrand.Uint32n(e.totalWeight)
	for i := range a.WeightedClusters {
		w := &a.WeightedClusters[i]
		if n < w.Weight {
			return w.Name, w
		}
		n -= w.Weight
	}
	w := &a.WeightedClusters[len(a.WeightedClusters)-1]
	return w.Name, w
}

// RewritePath applies the route's prefix_rewrite to path; ok is false when there is none.
func (e *Entry) RewritePath(path string) (string, bool) {
	if e.Action == nil || e.Action.PrefixRewrite == "" {
		return path, false
	}
	switch {
	case e.match.Prefix != "":
		return e.Action.PrefixRewrite + path[len(e.match.Prefix):], true
	case e.match.Path != "":
		return e.Action.PrefixRewrite + path[len(stripQuery(path)):], true
	}
	return path, false
}

func stripQuery(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		return p[:i]
	}
	return p
}

func hasPrefix(s, prefix string, fold bool) bool {
	if len(s) < len(prefix) {
		return false
	}
	if fold {
		return strings.EqualFold(s[:len(prefix)], prefix)
	}
	return s[:len(prefix)] == prefix
}

// lowerASCII lower-cases s, allocating only when it has upper-case letters.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}
