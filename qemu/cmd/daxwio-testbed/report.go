package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/daxwio/daxwio/qemu/internal/result"
	"github.com/daxwio/daxwio/qemu/internal/vm"
)

// reportsOf returns a VM's reports, or an error that says what went wrong
// with that VM, including the tail of its console when it gave no report.
func reportsOf(o vm.Outcome) ([]result.Report, error) {
	var errs []error
	if o.Err != nil {
		errs = append(errs, o.Err)
	}
	if o.ParseErr != nil {
		errs = append(errs, fmt.Errorf("vm %s: %w", o.Name, o.ParseErr))
	}
	for _, r := range o.Reports {
		if !r.OK {
			errs = append(errs, fmt.Errorf("vm %s (slot %d) role %s failed: %s", o.Name, r.Slot, r.Role, r.Error))
		}
	}
	if len(o.Reports) == 0 && o.Err == nil && o.ParseErr == nil {
		errs = append(errs, fmt.Errorf("vm %s: powered off without a report", o.Name))
	}
	if len(errs) > 0 && len(o.Reports) == 0 {
		errs = append(errs, fmt.Errorf("vm %s: last console lines:\n%s", o.Name, tail(o.Log, 15)))
	}
	return o.Reports, errors.Join(errs...)
}

func tail(log []byte, n int) string {
	if len(strings.TrimSpace(string(log))) == 0 {
		return "    | (console empty)"
	}
	lines := strings.Split(strings.TrimRight(string(log), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i := range lines {
		lines[i] = "    | " + strings.TrimRight(lines[i], "\r")
	}
	return strings.Join(lines, "\n")
}

func joinErrs(errs []error) error {
	var s []string
	for _, e := range errs {
		s = append(s, e.Error())
	}
	return errors.New(strings.Join(s, "\n"))
}
