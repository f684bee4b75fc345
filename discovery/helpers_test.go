package discovery

import (
	"errors"
	"time"

	xdstypev3 "github.com/cncf/xds/go/xds/type/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/strait-proxy/strait/reactor"
)

func wrapBool(v bool) *wrapperspb.BoolValue       { return wrapperspb.Bool(v) }
func wrapUint32(v uint32) *wrapperspb.UInt32Value { return wrapperspb.UInt32(v) }

type routerRouter = routerv3.Router

type reactorConn = reactor.Conn

// matcherStringMatch builds a HeaderMatcher with a string_match of one kind.
type matcherStringMatch struct {
	name, exact, prefix, suffix, contains, regex string
}

func (m *matcherStringMatch) matcher() *routev3.HeaderMatcher {
	sm := &matcherv3.StringMatcher{}
	switch {
	case m.exact != "":
		sm.MatchPattern = &matcherv3.StringMatcher_Exact{Exact: m.exact}
	case m.prefix != "":
		sm.MatchPattern = &matcherv3.StringMatcher_Prefix{Prefix: m.prefix}
	case m.suffix != "":
		sm.MatchPattern = &matcherv3.StringMatcher_Suffix{Suffix: m.suffix}
	case m.contains != "":
		sm.MatchPattern = &matcherv3.StringMatcher_Contains{Contains: m.contains}
	case m.regex != "":
		sm.MatchPattern = &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: m.regex}}
	}
	return &routev3.HeaderMatcher{Name: m.name, HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: sm}}
}

// typedStruct wraps v in an xds.type.v3.TypedStruct Any with the given inner type URL.
func typedStruct(url string, v map[string]any) (*anypb.Any, error) {
	s, err := structpb.NewStruct(v)
	if err != nil {
		return nil, err
	}
	return anypb.New(&xdstypev3.TypedStruct{TypeUrl: url, Value: s})
}

var errUnusedTransport = errors.New("test transport: not for traffic")

// unusedTransport satisfies pipeline.Deps for building factories; nothing may use it.
type unusedTransport struct{}

func (unusedTransport) Name() string { return "unused" }
func (unusedTransport) Listen(string, reactor.Handler) (reactor.Listener, error) {
	return nil, errUnusedTransport
}
func (unusedTransport) Dial(_ reactor.Conn, _ string, _ time.Duration, _ reactor.Handler, done func(reactor.Conn, error)) {
	done(nil, errUnusedTransport)
}
func (unusedTransport) Close() error { return nil }
