//go:build race

package actors

// raceEnabled scales tests down under -race (5-10x slower, and wazero's
// compiled code is not instrumented anyway).
const raceEnabled = true
