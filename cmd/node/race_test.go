//go:build race

package main

// raceEnabled: the tests and the servers they run (this binary) are built
// with the race detector, which makes them several times slower.
const raceEnabled = true
