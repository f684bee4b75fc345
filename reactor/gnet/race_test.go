//go:build race

package gnet

const raceEnabled = true
