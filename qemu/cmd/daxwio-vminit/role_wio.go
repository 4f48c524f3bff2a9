package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/daxwio/daxwio/actors"
	"github.com/daxwio/daxwio/actors/examples/abi"
	"github.com/daxwio/daxwio/qemu/internal/wiotest"
)

func init() {
	// The wio check: slot 0 runs the host-side actors runtime, slot 1 the
	// device-side one, every slot a client; the actor migrates between the
	// VMs during the stream (qemu/internal/wiotest).
	roles["wio"] = role{needsRegion: true, run: runWio}
	// wio-probe times the steps of running an actor in this VM: wazero
	// runtime, compile, instantiate (a Go guest starts its runtime),
	// wio_init, 20 requests. It needs the module in the initramfs
	// (daxwio-testbed run --role wio-probe puts it there).
	roles["wio-probe"] = role{run: runWioProbe}
}

// guestRuntime is the wasm runtime configuration in a TCG guest: far longer
// deadlines than on a host (an interpreted Go guest starting its runtime,
// on a vCPU that a loaded host can starve for seconds).
func guestRuntime(e *env) actors.RuntimeConfig {
	return actors.RuntimeConfig{InitTimeout: 5 * time.Minute, CallTimeout: time.Minute, Log: lineWriter(e)}
}

func runWio(ctx context.Context, e *env) (any, error) {
	p, err := wiotest.ParseBoot(e.cfg.VMs, e.cfg.Params)
	if err != nil {
		return nil, err
	}
	return wiotest.Run(ctx, e.region, e.cfg.Slot, p, guestRuntime(e), lineWriter(e), func(s string) { e.logf("%s", s) })
}

// lineWriter turns writes (the node's ownership changes, actor logs) into
// guest log lines.
func lineWriter(e *env) envWriter { return envWriter{e} }

type envWriter struct{ e *env }

func (w envWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.e.logf("%s", l)
	}
	return len(p), nil
}

func runWioProbe(ctx context.Context, e *env) (any, error) {
	res := map[string]any{"engine": wiotest.Engine()}
	name := e.cfg.Params["actor"]
	if name == "" {
		name = "crc32c"
	}
	wasm, err := os.ReadFile(wiotest.WasmPath(name))
	if err != nil {
		return res, fmt.Errorf("wio-probe: %w (daxwio-testbed run --role wio-probe carries the example actors)", err)
	}
	t := time.Now()
	step := func(s string) {
		res[s+"_seconds"] = time.Since(t).Seconds()
		e.logf("%s: %.2fs", s, time.Since(t).Seconds())
		t = time.Now()
	}
	rt, err := actors.NewRuntime(ctx, guestRuntime(e))
	if err != nil {
		return res, err
	}
	defer rt.Close(ctx)
	step("runtime")
	compile := rt.Compile
	if e.cfg.Params["trusted"] == "1" {
		compile = rt.CompileTrusted
	}
	m, err := compile(ctx, wasm)
	if err != nil {
		return res, err
	}
	step("compile")
	inst, err := m.Instantiate(ctx, name, 4096)
	if err != nil {
		return res, err
	}
	defer inst.Close(ctx)
	step("instantiate")
	st := make(abi.Mem, 64<<10)
	if err := inst.Init(ctx, st, nil); err != nil {
		return res, err
	}
	step("init")
	in := make([]byte, 300)
	for i := 0; i < 20; i++ {
		if _, err := inst.Handle(ctx, st, in); err != nil {
			return res, err
		}
	}
	step("handle20")
	return res, nil
}
