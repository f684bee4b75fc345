package main

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestHTTP2ClientGoAwayThenPing: a client that sends GOAWAY and then a PING (h2spec 6.8/7.1
// do) sees Strait's PING acknowledgement or an orderly close (EOF), never a TCP reset:
// Strait half-closes and reads on instead of closing a socket that still holds the PING.
func TestHTTP2ClientGoAwayThenPing(t *testing.T) {
	up := newGoUpstream(t, "app", appHandler())
	for _, tr := range e2eTransports() {
		t.Run(tr, func(t *testing.T) {
			s := runStrait(t, tr, bootstrapYAML(
				[]listenerSpec{{"h2", hcmFilterCodec("goaway", "HTTP2", h2specRoutes)}},
				[]clusterSpec{{name: "app", hosts: []string{up.addr()}, extra: h1ClusterOptions}}, ""))
			resets := 0
			for i := range 30 {
				nc, err := net.Dial("tcp", s.addr(t, "h2"))
				if err != nil {
					t.Fatal(err)
				}
				fr := http2.NewFramer(nc, nc)
				_, _ = nc.Write([]byte(http2.ClientPreface))
				_ = fr.WriteSettings()
				_ = fr.WriteGoAway(0, http2.ErrCode(0xff), nil)
				time.Sleep(time.Duration(i%4) * 100 * time.Microsecond)
				_ = fr.WritePing(false, [8]byte{'h', '2', 's', 'p', 'e', 'c'})
				_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
				for {
					if _, err := fr.ReadFrame(); err != nil {
						if !errors.Is(err, io.EOF) {
							resets++
							t.Logf("connection %d: %v", i, err)
						}
						break
					}
				}
				nc.Close()
			}
			if resets > 0 {
				t.Errorf("%d of 30 connections ended with an error (a reset) instead of EOF", resets)
			}
		})
	}
}
