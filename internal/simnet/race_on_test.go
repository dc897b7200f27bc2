//go:build race

package simnet

// raceEnabled: the race detector slows the simulated network about
// sevenfold, past the deadlines its invariant tests keep.
const raceEnabled = true
