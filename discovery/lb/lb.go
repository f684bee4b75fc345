// Package lb is the contract between a cluster and its load-balancing policy: a Balancer
// picks one host of a fixed host list per connection or request, and a Factory builds a
// Balancer from such a list. Each policy lives in its own folder (roundrobin, leastrequest,
// random, ringhash, maglev) with one constructor and a README.md.
//
// Who may call it: discovery's clusters build a Balancer whenever their host set changes
// (never per request) and call Choose on the data path, concurrently and without locks, so
// every Balancer is immutable after construction except for atomic counters, and Choose must
// not allocate. User programs may implement their own policy against the same interface.
package lb

import (
	"errors"
	"fmt"
	"net"

	"github.com/bytedance/gopkg/util/xxhash3"

	"github.com/strait-proxy/strait/pipeline"
)

// Balancer picks a host. Choose is called concurrently from every event loop and must be
// lock-free and allocation-free. ctx may be nil. Choose returns nil only if the balancer has
// no host. When ctx.Attempt > 0 and ctx.Previous is set, Choose returns another host than
// Previous whenever the list holds more than one distinct host.
type Balancer interface {
	Choose(ctx *pipeline.LBContext) pipeline.Host
}

// Endpoint is one host offered to a balancer, with its load_balancing_weight.
type Endpoint struct {
	Host   pipeline.Host
	Weight uint32
}

// Factory builds a balancer over a non-empty host list. The balancer copies what it keeps;
// the caller may reuse hosts afterwards.
type Factory func(hosts []Endpoint) (Balancer, error)

// Sentinel errors of every policy's constructor.
var (
	// ErrNoHosts: a balancer needs at least one host.
	ErrNoHosts = errors.New("lb: no hosts")
	// ErrInvalidHost: a nil host or a zero weight.
	ErrInvalidHost = errors.New("lb: invalid host")
	// ErrInvalidConfig wraps policy configuration errors.
	ErrInvalidConfig = errors.New("lb: invalid configuration")
)

// CheckEndpoints verifies the invariants every Factory relies on: at least one host, no
// nil host, every weight positive.
func CheckEndpoints(hosts []Endpoint) error {
	if len(hosts) == 0 {
		return ErrNoHosts
	}
	for i, e := range hosts {
		if e.Host == nil {
			return fmt.Errorf("%w: host %d is nil", ErrInvalidHost, i)
		}
		if e.Weight == 0 {
			return fmt.Errorf("%w: host %d (%s) has weight 0", ErrInvalidHost, i, e.Host.Address())
		}
	}
	return nil
}

// Avoid returns the host a retry should not get again (ctx.Previous on a retry), or nil.
func Avoid(ctx *pipeline.LBContext) pipeline.Host {
	if ctx == nil || ctx.Attempt == 0 {
		return nil
	}
	return ctx.Previous
}

// Hash returns the key consistent-hashing policies use: ctx.HashKey when set, otherwise a
// hash of the downstream IP address (the port is ignored, so one client keeps its host
// across connections). ok is false when ctx carries neither; the caller then picks at
// random. It does not allocate for *net.TCPAddr and *net.UDPAddr.
func Hash(ctx *pipeline.LBContext) (key uint64, ok bool) {
	if ctx == nil {
		return 0, false
	}
	if ctx.HasHash {
		return ctx.HashKey, true
	}
	var ip net.IP
	switch a := ctx.DownstreamAddr.(type) {
	case *net.TCPAddr:
		if a == nil {
			return 0, false
		}
		ip = a.IP
	case *net.UDPAddr:
		if a == nil {
			return 0, false
		}
		ip = a.IP
	case nil:
		return 0, false
	default:
		host, _, err := net.SplitHostPort(a.String())
		if err != nil {
			return 0, false
		}
		ip = net.ParseIP(host)
	}
	if len(ip) == 0 {
		return 0, false
	}
	if v4 := ip.To4(); v4 != nil {
		ip = v4 // one key for 1.2.3.4 and ::ffff:1.2.3.4
	}
	return xxhash3.Hash(ip), true
}

// Mix64 is a bijective 64-bit finaliser (splitmix64). Policies use it to derive a second,
// independent-looking hash from a first one.
func Mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
