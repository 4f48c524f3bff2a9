package actors

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

// Errors callers branch on. Every error returned by this package wraps one
// of these (or a cxl error) with what failed and where.
var (
	ErrBadModule   = errors.New("actors: module rejected")
	ErrTrap        = errors.New("actors: actor trapped")
	ErrDeadline    = errors.New("actors: actor call exceeded its deadline")
	ErrActorFailed = errors.New("actors: actor returned an error")
	ErrTooLarge    = errors.New("actors: request or output too large")
	ErrExists      = errors.New("actors: actor already deployed")
	ErrNotFound    = errors.New("actors: no such actor")
	ErrFull        = errors.New("actors: arena full")
	ErrTargetDown  = errors.New("actors: migration target side is not running")
	ErrAborted     = errors.New("actors: migration aborted")
	ErrAbandoned   = errors.New("actors: request abandoned by its submitter")
	ErrCorrupt     = errors.New("actors: corrupt arena bytes")
	ErrClosed      = errors.New("actors: closed")
)

// RuntimeConfig configures one side's wasm runtime.
type RuntimeConfig struct {
	// CacheDir holds wazero's compilation cache; "" keeps it in memory.
	CacheDir string
	// MemoryLimitPages caps every instance's linear memory (64 KiB pages);
	// 0 means 2048 (128 MiB).
	MemoryLimitPages uint32
	// CallTimeout is the deadline of one handle or flush call; 0 means 2s.
	CallTimeout time.Duration
	// InitTimeout is the deadline of instantiation (a Go guest starts its
	// runtime in _initialize) and of wio_input and wio_init; 0 means 30s.
	InitTimeout time.Duration
	// Log receives actor log lines and guest stderr; nil discards them.
	Log io.Writer
}

// Runtime compiles and instantiates actors for one side. It is safe for
// concurrent use; each Instance is not.
type Runtime struct {
	cfg RuntimeConfig
	// rt[true] compiles termination checks into every loop so a deadline
	// can stop a runaway actor; rt[false] runs trusted actors without them
	// (several times faster: wazero checks by an indirect call per loop
	// iteration) and without a per-call deadline.
	rt   map[bool]wazero.Runtime
	next atomic.Uint64

	mu        sync.Mutex
	instances map[api.Module]*Instance
	compiled  map[compiledKey]*Module
}

// NewRuntime builds a runtime with the wio host module and WASI.
func NewRuntime(ctx context.Context, cfg RuntimeConfig) (*Runtime, error) {
	if cfg.MemoryLimitPages == 0 {
		cfg.MemoryLimitPages = 2048
	}
	if cfg.CallTimeout == 0 {
		cfg.CallTimeout = 2 * time.Second
	}
	if cfg.InitTimeout == 0 {
		cfg.InitTimeout = 30 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	var cache wazero.CompilationCache
	if cfg.CacheDir != "" {
		var err error
		if cache, err = wazero.NewCompilationCacheWithDir(cfg.CacheDir); err != nil {
			return nil, fmt.Errorf("actors: compilation cache in %s: %w", cfg.CacheDir, err)
		}
	}
	r := &Runtime{cfg: cfg, rt: map[bool]wazero.Runtime{},
		instances: map[api.Module]*Instance{}, compiled: map[compiledKey]*Module{}}
	for _, contained := range []bool{true, false} {
		rc := wazero.NewRuntimeConfig().
			WithCloseOnContextDone(contained).
			WithMemoryLimitPages(cfg.MemoryLimitPages)
		if cache != nil {
			rc = rc.WithCompilationCache(cache)
		}
		rt := wazero.NewRuntimeWithConfig(ctx, rc)
		r.rt[contained] = rt
		if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
			r.Close(ctx)
			return nil, fmt.Errorf("actors: instantiating WASI: %w", err)
		}
		if err := r.hostModule(ctx, rt); err != nil {
			r.Close(ctx)
			return nil, err
		}
	}
	return r, nil
}

type compiledKey struct {
	hash    [32]byte
	trusted bool
}

// Close releases every module and instance.
func (r *Runtime) Close(ctx context.Context) error {
	var err error
	for _, rt := range r.rt {
		if e := rt.Close(ctx); e != nil && err == nil {
			err = e
		}
	}
	return err
}

func (r *Runtime) instance(m api.Module) *Instance {
	r.mu.Lock()
	i := r.instances[m]
	r.mu.Unlock()
	return i
}

func (r *Runtime) stateOf(m api.Module) StateAccess {
	if i := r.instance(m); i != nil {
		return i.state
	}
	return nil
}

type hostFn struct {
	name    string
	params  []api.ValueType
	results []api.ValueType
	fn      api.GoModuleFunc
}

var i32, i64 = api.ValueTypeI32, api.ValueTypeI64

func (r *Runtime) hostFns() []hostFn {
	return []hostFn{
		{"state_size", nil, []api.ValueType{i32}, func(ctx context.Context, m api.Module, s []uint64) {
			st := r.stateOf(m)
			if st == nil {
				s[0] = 0
				return
			}
			s[0] = uint64(uint32(st.Size()))
		}},
		{"state_read", []api.ValueType{i32, i32, i32}, []api.ValueType{i32}, func(ctx context.Context, m api.Module, s []uint64) {
			off, ptr, n := uint32(s[0]), uint32(s[1]), uint32(s[2])
			s[0] = uint64(^uint32(0))
			st := r.stateOf(m)
			buf, ok := m.Memory().Read(ptr, n)
			if st == nil || !ok || st.Read(int(off), buf) != nil {
				return
			}
			s[0] = 0
		}},
		{"state_write", []api.ValueType{i32, i32, i32}, []api.ValueType{i32}, func(ctx context.Context, m api.Module, s []uint64) {
			off, ptr, n := uint32(s[0]), uint32(s[1]), uint32(s[2])
			s[0] = uint64(^uint32(0))
			st := r.stateOf(m)
			buf, ok := m.Memory().Read(ptr, n)
			if st == nil || !ok || st.Write(int(off), buf) != nil {
				return
			}
			s[0] = 0
		}},
		{"now_ns", nil, []api.ValueType{i64}, func(ctx context.Context, m api.Module, s []uint64) {
			s[0] = uint64(time.Now().UnixNano())
		}},
		{"log", []api.ValueType{i32, i32}, nil, func(ctx context.Context, m api.Module, s []uint64) {
			n := min(uint32(s[1]), 4096)
			if b, ok := m.Memory().Read(uint32(s[0]), n); ok {
				name := m.Name()
				if i := r.instance(m); i != nil {
					name = i.name
				}
				fmt.Fprintf(r.cfg.Log, "actor %s: %s\n", name, b)
			}
		}},
	}
}

func (r *Runtime) hostModule(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder("wio")
	for _, h := range r.hostFns() {
		b.NewFunctionBuilder().WithGoModuleFunction(h.fn, h.params, h.results).Export(h.name)
	}
	if _, err := b.Instantiate(ctx); err != nil {
		return fmt.Errorf("actors: instantiating wio host module: %w", err)
	}
	return nil
}

// Module is a compiled, validated actor module.
type Module struct {
	r       *Runtime
	cm      wazero.CompiledModule
	Hash    [32]byte
	trusted bool
	init    bool
	fl      bool
}

type sig struct{ params, results []api.ValueType }

var (
	wioImports = map[string]sig{}
	wioExports = map[string]sig{
		"wio_input":  {[]api.ValueType{i32}, []api.ValueType{i32}},
		"wio_init":   {[]api.ValueType{i32}, []api.ValueType{i32}},
		"wio_handle": {[]api.ValueType{i32}, []api.ValueType{i64}},
		"wio_flush":  {nil, []api.ValueType{i32}},
	}
)

func init() {
	for _, h := range (&Runtime{}).hostFns() {
		wioImports[h.name] = sig{h.params, h.results}
	}
}

func sameTypes(a, b []api.ValueType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Compile validates and compiles wasm (cached by content hash) for
// contained execution: every call has a deadline. A module that does not
// decode, imports anything but the wio host module and WASI, or lacks
// wio_input/wio_handle with the ABI's signatures is rejected with
// ErrBadModule.
func (r *Runtime) Compile(ctx context.Context, wasm []byte) (*Module, error) {
	return r.compile(ctx, wasm, false)
}

// CompileTrusted is Compile for actors deployed as trusted: traps and the
// memory limit are still contained, but calls have no deadline, so an
// actor that never returns blocks its own worker forever.
func (r *Runtime) CompileTrusted(ctx context.Context, wasm []byte) (*Module, error) {
	return r.compile(ctx, wasm, true)
}

func (r *Runtime) compile(ctx context.Context, wasm []byte, trusted bool) (*Module, error) {
	key := compiledKey{sha256.Sum256(wasm), trusted}
	h := key.hash
	r.mu.Lock()
	m := r.compiled[key]
	r.mu.Unlock()
	if m != nil {
		return m, nil
	}
	cm, err := r.rt[!trusted].CompileModule(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("actors: compiling module: %v: %w", err, ErrBadModule)
	}
	bad := func(format string, a ...any) (*Module, error) {
		cm.Close(ctx)
		return nil, fmt.Errorf("actors: "+format+": %w", append(a, ErrBadModule)...)
	}
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		switch mod {
		case "wasi_snapshot_preview1":
		case "wio":
			s, ok := wioImports[name]
			if !ok {
				return bad("import wio.%s is not part of the actor ABI", name)
			}
			if !sameTypes(s.params, f.ParamTypes()) || !sameTypes(s.results, f.ResultTypes()) {
				return bad("import wio.%s has the wrong signature", name)
			}
		default:
			return bad("import %s.%s: actors may import only the wio host module and WASI", mod, name)
		}
	}
	if len(cm.ImportedMemories()) > 0 {
		return bad("actors may not import memory")
	}
	if _, ok := cm.ExportedMemories()["memory"]; !ok {
		return bad("module does not export its memory as \"memory\"")
	}
	ex := cm.ExportedFunctions()
	m = &Module{r: r, cm: cm, Hash: h, trusted: trusted}
	for name, s := range wioExports {
		f, ok := ex[name]
		if !ok {
			if name == "wio_input" || name == "wio_handle" {
				return bad("module does not export %s", name)
			}
			continue
		}
		if !sameTypes(s.params, f.ParamTypes()) || !sameTypes(s.results, f.ResultTypes()) {
			return bad("export %s has the wrong signature", name)
		}
		m.init = m.init || name == "wio_init"
		m.fl = m.fl || name == "wio_flush"
	}
	r.mu.Lock()
	if old := r.compiled[key]; old != nil {
		r.mu.Unlock()
		cm.Close(ctx)
		return old, nil
	}
	r.compiled[key] = m
	r.mu.Unlock()
	return m, nil
}

// StateAccess is an actor's view of its state arena during one call.
type StateAccess interface {
	Size() int
	Read(off int, p []byte) error
	Write(off int, p []byte) error
}

// Instance is one instantiation of a Module. Not safe for concurrent use.
type Instance struct {
	r       *Runtime
	name    string
	mod     api.Module
	mem     api.Memory
	input   api.Function
	initF   api.Function
	handle  api.Function
	flush   api.Function
	inPtr   uint32
	inCap   uint32
	state   StateAccess
	stack   [1]uint64
	broken  error
	timeout time.Duration // of the call in progress
	// callTimeout is the deadline of handle and flush calls (0: none,
	// for trusted actors).
	callTimeout time.Duration
}

// Instantiate creates an instance whose input buffer holds maxInput bytes.
// A trap in the module's start function (_initialize for Go reactors) or
// in wio_input is an ErrTrap.
func (m *Module) Instantiate(ctx context.Context, name string, maxInput uint32) (*Instance, error) {
	r := m.r
	id := r.next.Add(1)
	cfg := wazero.NewModuleConfig().
		WithName(fmt.Sprintf("%s#%d", name, id)).
		WithStartFunctions("_initialize").
		WithStderr(r.cfg.Log).WithStdout(r.cfg.Log).
		WithSysNanotime().WithSysWalltime()
	i := &Instance{r: r, name: name, timeout: r.cfg.InitTimeout}
	cctx, cancel := context.WithTimeout(ctx, r.cfg.InitTimeout)
	defer cancel()
	mod, err := r.rt[!m.trusted].InstantiateModule(cctx, m.cm, cfg)
	if err != nil {
		return nil, fmt.Errorf("actors: instantiating %s: %w", name, classify(err))
	}
	i.mod, i.mem = mod, mod.Memory()
	i.input, i.initF = mod.ExportedFunction("wio_input"), mod.ExportedFunction("wio_init")
	i.handle, i.flush = mod.ExportedFunction("wio_handle"), mod.ExportedFunction("wio_flush")
	r.mu.Lock()
	r.instances[mod] = i
	r.mu.Unlock()
	i.stack[0] = uint64(maxInput)
	if err := i.call(ctx, i.input); err != nil {
		i.Close(ctx)
		return nil, fmt.Errorf("actors: %s: wio_input(%d): %w", name, maxInput, err)
	}
	i.inPtr, i.inCap = uint32(i.stack[0]), maxInput
	i.callTimeout = r.cfg.CallTimeout
	if m.trusted {
		i.callTimeout = 0
	}
	if uint64(i.inPtr)+uint64(maxInput) > uint64(i.mem.Size()) {
		i.Close(ctx)
		return nil, fmt.Errorf("actors: %s: wio_input returned [%d,+%d) outside memory of %d bytes: %w",
			name, i.inPtr, maxInput, i.mem.Size(), ErrBadModule)
	}
	return i, nil
}

// classify maps a wazero call error onto this package's sentinels.
func classify(err error) error {
	var ee *sys.ExitError
	if errors.As(err, &ee) {
		switch ee.ExitCode() {
		case sys.ExitCodeDeadlineExceeded, sys.ExitCodeContextCanceled:
			return fmt.Errorf("%v: %w", err, ErrDeadline)
		}
		return fmt.Errorf("actor exited with code %d: %w", ee.ExitCode(), ErrTrap)
	}
	return fmt.Errorf("%v: %w", err, ErrTrap)
}

func (i *Instance) call(ctx context.Context, f api.Function) error {
	if i.broken != nil {
		return i.broken
	}
	var err error
	if i.timeout > 0 {
		cctx, cancel := context.WithTimeout(ctx, i.timeout)
		err = f.CallWithStack(cctx, i.stack[:])
		cancel()
	} else {
		err = f.CallWithStack(ctx, i.stack[:])
	}
	if err != nil {
		// After a trap or a deadline the guest's own runtime may be in any
		// state: the instance is never used again.
		i.broken = classify(err)
		return i.broken
	}
	return nil
}

// Broken reports the error that made this instance unusable, or nil.
func (i *Instance) Broken() error { return i.broken }

func (i *Instance) setInput(in []byte) error {
	if uint32(len(in)) > i.inCap || uint64(len(in)) > 1<<31 {
		return fmt.Errorf("actors: %s: request of %d bytes, limit %d: %w", i.name, len(in), i.inCap, ErrTooLarge)
	}
	if !i.mem.Write(i.inPtr, in) {
		return fmt.Errorf("actors: %s: input buffer outside memory: %w", i.name, ErrTrap)
	}
	return nil
}

// Init runs wio_init with arg over st (if the module exports it).
func (i *Instance) Init(ctx context.Context, st StateAccess, arg []byte) error {
	if i.initF == nil {
		return nil
	}
	if err := i.setInput(arg); err != nil {
		return err
	}
	i.state = st
	defer func() { i.state = nil }()
	i.stack[0] = uint64(len(arg))
	i.timeout = i.r.cfg.InitTimeout
	if err := i.call(ctx, i.initF); err != nil {
		return fmt.Errorf("actors: %s: wio_init: %w", i.name, err)
	}
	if int32(i.stack[0]) != 0 {
		return fmt.Errorf("actors: %s: wio_init returned %d: %w", i.name, int32(i.stack[0]), ErrActorFailed)
	}
	return nil
}

// Handle runs wio_handle on in with state st. The returned slice is a view
// of guest memory valid until the next call on this instance.
func (i *Instance) Handle(ctx context.Context, st StateAccess, in []byte) ([]byte, error) {
	if err := i.setInput(in); err != nil {
		return nil, err
	}
	i.state = st
	i.stack[0] = uint64(len(in))
	i.timeout = i.callTimeout
	err := i.call(ctx, i.handle)
	i.state = nil
	if err != nil {
		return nil, fmt.Errorf("actors: %s: wio_handle: %w", i.name, err)
	}
	res := int64(i.stack[0])
	if res < 0 {
		return nil, fmt.Errorf("actors: %s: wio_handle returned %d: %w", i.name, res, ErrActorFailed)
	}
	ptr, n := uint32(res>>32), uint32(res)&0x7fffffff
	out, ok := i.mem.Read(ptr, n)
	if !ok {
		i.broken = fmt.Errorf("output [%d,+%d) outside memory: %w", ptr, n, ErrTrap)
		return nil, fmt.Errorf("actors: %s: wio_handle: %w", i.name, i.broken)
	}
	if res&(1<<31) != 0 {
		return nil, fmt.Errorf("actors: %s: %s: %w", i.name, truncate(out, 512), ErrActorFailed)
	}
	return out, nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// Flush runs wio_flush (if exported) over st.
func (i *Instance) Flush(ctx context.Context, st StateAccess) error {
	if i.flush == nil {
		return nil
	}
	i.state = st
	i.timeout = i.callTimeout
	err := i.call(ctx, i.flush)
	i.state = nil
	if err != nil {
		return fmt.Errorf("actors: %s: wio_flush: %w", i.name, err)
	}
	if int32(i.stack[0]) != 0 {
		return fmt.Errorf("actors: %s: wio_flush returned %d: %w", i.name, int32(i.stack[0]), ErrActorFailed)
	}
	return nil
}

// Close releases the instance.
func (i *Instance) Close(ctx context.Context) error {
	i.r.mu.Lock()
	delete(i.r.instances, i.mod)
	i.r.mu.Unlock()
	if i.broken == nil {
		i.broken = ErrClosed
	}
	return i.mod.Close(ctx)
}
