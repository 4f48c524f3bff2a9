//go:build wasip1

// Command wasm is the filter actor built for GOOS=wasip1 GOARCH=wasm with
// -buildmode=c-shared; see docs/ACTORS.md for the exports.
package main

import (
	"github.com/daxwio/daxwio/actors/examples/filter"
	"github.com/daxwio/daxwio/actors/examples/internal/guest"
)

var a = new(filter.Actor)

//go:wasmexport wio_input
func wioInput(n uint32) uint32 { return guest.Input(n) }

//go:wasmexport wio_init
func wioInit(n uint32) int32 { return guest.Init(a, n) }

//go:wasmexport wio_handle
func wioHandle(n uint32) int64 { return guest.Handle(a, n) }

func main() {}
