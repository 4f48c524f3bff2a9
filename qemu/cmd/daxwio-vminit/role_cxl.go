package main

import (
	"fmt"

	"github.com/daxwio/daxwio/qemu/internal/bootparam"
)

// setupCXL turns the emulated CXL type-3 device into /dev/dax0.0.
func setupCXL(cfg bootparam.Config) (string, error) {
	return "", fmt.Errorf("init: the cxl backend is not set up yet")
}
