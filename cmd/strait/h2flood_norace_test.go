//go:build !race

package main

// floodRaceSlowdown: see h2flood_race_test.go.
const floodRaceSlowdown = 1
