package server

import (
	"testing"

	"github.com/strait-proxy/strait/discovery"
)

func TestSchedulerSize(t *testing.T) {
	spare, plain := Transport{Name: "loops", SpareP: true}, Transport{Name: "plain"}
	for _, c := range []struct {
		name    string
		rt      discovery.RuntimeConfig
		t       Transport
		env     string
		current int
		want    int
	}{
		{"one loop pinned to one CPU gets a spare P", discovery.RuntimeConfig{}, spare, "", 1, 2},
		{"three loops on one CPU", discovery.RuntimeConfig{Loops: 3}, spare, "", 1, 4},
		{"more CPUs than loops: Go's default stays", discovery.RuntimeConfig{Loops: 1}, spare, "", 8, 8},
		{"no spare wanted", discovery.RuntimeConfig{Loops: 4}, plain, "", 1, 1},
		{"configured", discovery.RuntimeConfig{GoMaxProcs: 3}, plain, "", 8, 3},
		{"configured below the loops: as given", discovery.RuntimeConfig{Loops: 4, GoMaxProcs: 1}, spare, "", 2, 1},
		{"environment wins", discovery.RuntimeConfig{Loops: 4, GoMaxProcs: 6}, spare, "1", 1, 1},
	} {
		if got := SchedulerSize(c.rt, c.t, c.env, c.current); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}
