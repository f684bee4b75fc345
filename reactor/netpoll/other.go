//go:build !linux

package netpoll

import "github.com/strait-proxy/strait/reactor"

// New reports ErrUnsupported: this backend drives epoll directly.
func New(reactor.Options) (reactor.Transport, error) { return nil, ErrUnsupported }
