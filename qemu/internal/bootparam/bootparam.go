// Package bootparam carries a VM's role from the testbed to the guest's init
// on the kernel command line.
//
// The host appends parameters of the form "daxwio.KEY=VALUE"; the guest reads
// /proc/cmdline and picks them out. Values are restricted to characters that
// survive the kernel's command-line parser unquoted, so no quoting is needed
// in either direction.
package bootparam

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Prefix marks the parameters that belong to the testbed.
const Prefix = "daxwio."

// Config is what one VM is told to do.
type Config struct {
	Role    string            // workload name, e.g. "cas", "daxfs", "shell"
	Slot    int               // this VM's index, 0..VMs-1
	VMs     int               // number of VMs sharing the pool
	Backend string            // "ivshmem" or "cxl"
	Timeout time.Duration     // the guest gives up (and reports failure) after this
	Params  map[string]string // role-specific parameters (daxwio.p.KEY=VALUE)
}

func validValue(s string) error {
	if s == "" {
		return fmt.Errorf("empty value")
	}
	for _, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.ContainsRune("._-/:,+@%", c)
		if !ok {
			return fmt.Errorf("value %q has character %q (allowed: letters, digits, ._-/:,+@%%)", s, c)
		}
	}
	return nil
}

func validKey(s string) error {
	if s == "" {
		return fmt.Errorf("empty key")
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return fmt.Errorf("key %q has character %q (allowed: a-z, 0-9, _)", s, c)
		}
	}
	return nil
}

// Format renders c as space-separated kernel parameters.
func (c Config) Format() (string, error) {
	if err := validValue(c.Role); err != nil {
		return "", fmt.Errorf("bootparam: role: %w", err)
	}
	if c.VMs < 1 || c.Slot < 0 || c.Slot >= c.VMs {
		return "", fmt.Errorf("bootparam: slot %d out of range for %d VMs", c.Slot, c.VMs)
	}
	backend := c.Backend
	if backend == "" {
		backend = "ivshmem"
	}
	if err := validValue(backend); err != nil {
		return "", fmt.Errorf("bootparam: backend: %w", err)
	}
	parts := []string{
		Prefix + "role=" + c.Role,
		Prefix + "slot=" + strconv.Itoa(c.Slot),
		Prefix + "vms=" + strconv.Itoa(c.VMs),
		Prefix + "backend=" + backend,
	}
	if c.Timeout > 0 {
		parts = append(parts, Prefix+"timeout="+c.Timeout.String())
	}
	keys := make([]string, 0, len(c.Params))
	for k := range c.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := validKey(k); err != nil {
			return "", fmt.Errorf("bootparam: param: %w", err)
		}
		if err := validValue(c.Params[k]); err != nil {
			return "", fmt.Errorf("bootparam: param %s: %w", k, err)
		}
		parts = append(parts, Prefix+"p."+k+"="+c.Params[k])
	}
	return strings.Join(parts, " "), nil
}

// Parse extracts the Config from a full kernel command line (the contents of
// /proc/cmdline). Parameters without the prefix are ignored. A missing role
// or slot is an error; so is a malformed number.
func Parse(cmdline string) (Config, error) {
	c := Config{VMs: 1, Backend: "ivshmem", Params: map[string]string{}}
	var haveRole, haveSlot bool
	for _, f := range strings.Fields(cmdline) {
		if !strings.HasPrefix(f, Prefix) {
			continue
		}
		kv := strings.TrimPrefix(f, Prefix)
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return c, fmt.Errorf("bootparam: %q has no '='", f)
		}
		var err error
		switch {
		case k == "role":
			c.Role, haveRole = v, true
		case k == "slot":
			c.Slot, err = strconv.Atoi(v)
			haveSlot = true
		case k == "vms":
			c.VMs, err = strconv.Atoi(v)
		case k == "backend":
			c.Backend = v
		case k == "timeout":
			c.Timeout, err = time.ParseDuration(v)
		case strings.HasPrefix(k, "p."):
			c.Params[strings.TrimPrefix(k, "p.")] = v
		default:
			return c, fmt.Errorf("bootparam: unknown parameter %q", f)
		}
		if err != nil {
			return c, fmt.Errorf("bootparam: %q: %w", f, err)
		}
	}
	if !haveRole || c.Role == "" {
		return c, fmt.Errorf("bootparam: no %srole= on the kernel command line %q", Prefix, strings.TrimSpace(cmdline))
	}
	if !haveSlot {
		return c, fmt.Errorf("bootparam: no %sslot= on the kernel command line", Prefix)
	}
	if c.VMs < 1 || c.Slot < 0 || c.Slot >= c.VMs {
		return c, fmt.Errorf("bootparam: slot %d out of range for %d VMs", c.Slot, c.VMs)
	}
	return c, nil
}

// Int returns the role parameter key as an integer, or def when absent.
func (c Config) Int(key string, def int64) (int64, error) {
	v, ok := c.Params[key]
	if !ok {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parameter %s%s=%q: not an integer", Prefix+"p.", key, v)
	}
	return n, nil
}
