// Package examples lists the example actors: where the Makefile puts each
// .wasm build, its native twin, its deploy argument and a request
// generator, for tests, benchmarks and the wio demo.
package examples

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"

	"github.com/daxwio/daxwio/actors/examples/abi"
	"github.com/daxwio/daxwio/actors/examples/crc32c"
	"github.com/daxwio/daxwio/actors/examples/filter"
	"github.com/daxwio/daxwio/actors/examples/logfmt"
	"github.com/daxwio/daxwio/actors/examples/lz4"
	"github.com/daxwio/daxwio/actors/examples/upper"
)

// Example is one example actor.
type Example struct {
	Name      string
	StateSize int
	Arg       []byte
	New       func() abi.Actor
	// Gen returns a request of about n bytes.
	Gen func(r *rand.Rand, n int) []byte
}

func text(r *rand.Rand, n int) []byte {
	words := []string{"alpha", "beta", "gamma", "delta", "cxl", "wasm", "actor", "drain", "switch", "ring"}
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
		b.WriteByte(' ')
	}
	return b.Bytes()[:n]
}

func records(r *rand.Rand, n int) []byte {
	var b bytes.Buffer
	for b.Len() < n {
		fmt.Fprintf(&b, "%d,%s,%d\n", r.IntN(1000), []string{"get", "put", "del"}[r.IntN(3)], r.IntN(200))
	}
	return b.Bytes()
}

// All returns the examples in a fixed order.
func All() []Example {
	return []Example{
		{Name: "lz4", StateSize: lz4.StateSize, New: func() abi.Actor { return new(lz4.Actor) },
			Gen: func(r *rand.Rand, n int) []byte { return append([]byte{'c'}, text(r, n)...) }},
		{Name: "crc32c", StateSize: crc32c.StateSize, New: func() abi.Actor { return crc32c.Actor{} },
			Gen: func(r *rand.Rand, n int) []byte {
				b := make([]byte, n)
				for i := range b {
					b[i] = byte(r.Uint32())
				}
				return b
			}},
		{Name: "filter", StateSize: filter.StateSize, Arg: []byte("2>=100"), New: func() abi.Actor { return new(filter.Actor) },
			Gen: records},
		{Name: "logfmt", StateSize: logfmt.StateSize, New: func() abi.Actor { return new(logfmt.Actor) }, Gen: text},
		{Name: "upper", StateSize: upper.StateSize, New: func() abi.Actor { return upper.Actor{} }, Gen: text},
	}
}

// Get returns the example called name.
func Get(name string) (Example, bool) {
	for _, e := range All() {
		if e.Name == name {
			return e, true
		}
	}
	return Example{}, false
}

// Dir is where `make actors` writes the .wasm files: $DAXWIO_ACTORS_DIR,
// else actors/examples/bin of the source tree this package was built from.
func Dir() string {
	if d := os.Getenv("DAXWIO_ACTORS_DIR"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "bin")
}

// Wasm reads the built module name (an example, or "hostile/NAME").
func Wasm(name string) ([]byte, error) {
	p := filepath.Join(Dir(), name+".wasm")
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("examples: %s missing: run `make actors` first (it builds the example actors with the Go toolchain and wat2wasm): %w", p, err)
	}
	return b, nil
}

// Seq is a helper for generators of numbered payloads: it formats
// "client/k " as the request prefix so outputs are traceable.
func Seq(client, k int) []byte { return []byte(strconv.Itoa(client) + "/" + strconv.Itoa(k) + " ") }
