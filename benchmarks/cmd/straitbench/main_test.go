package main

import (
	"strings"
	"testing"
	"time"
)

func TestProfiles(t *testing.T) {
	short, ok := profileNamed("short")
	if !ok || short.rounds != 1 || short.duration != 2*time.Second || short.idleConns != 500 {
		t.Fatalf("short profile = %+v, want 1 round, 2 s, 500 idle conns", short)
	}
	full, ok := profileNamed("full")
	if !ok || full.rounds != 5 || full.duration != 5*time.Second || full.idleConns != 8000 {
		t.Fatalf("full profile = %+v, want 5 rounds, 5 s, 8000 idle conns", full)
	}
	if _, ok := profileNamed("medium"); ok {
		t.Fatal("unknown profile accepted")
	}
	if pick(0, 3) != 3 || pick(7, 3) != 7 || pickD(0, time.Second) != time.Second {
		t.Fatal("flag override broken")
	}
}

func TestHeaderHelpers(t *testing.T) {
	if got := firstLine("\n nginx version: nginx/1.22.1 \nmore"); got != "nginx version: nginx/1.22.1" {
		t.Fatalf("firstLine = %q", got)
	}
	if firstLine("  ") != "unknown" {
		t.Fatal("empty output must read unknown")
	}
	if m := cpuModel(); !strings.Contains(m, "online CPUs") {
		t.Fatalf("cpuModel = %q", m)
	}
}
