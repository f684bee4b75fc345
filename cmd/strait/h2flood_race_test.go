//go:build race

package main

// floodRaceSlowdown scales the flood tests' attack rate down under the race detector, which
// makes every operation several times dearer on the same two cores.
const floodRaceSlowdown = 5
