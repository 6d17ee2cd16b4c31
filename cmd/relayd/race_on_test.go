//go:build race

package main

// raceEnabled: the tests run under -race, and so do the relayd binaries
// they build.
const raceEnabled = true
