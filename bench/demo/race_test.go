//go:build race

package demo

// raceEnabled: the multi-process test compiles 2.6 MB wasm modules in
// several processes; under the race detector that alone takes minutes.
const raceEnabled = true
