package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/daxwio/daxwio/cxl"
	"github.com/daxwio/daxwio/cxl/device"
)

// telemetryExtent is the region extent where an emulated device publishes
// its telemetry words (docs/DEVICE.md §4), when the region has one.
const telemetryExtent = "wio-telemetry"

// With WIO_DEVICE_PROFILE set (smartssd or scaleflux), `wio device` runs
// every device-side actor call on the emulated CSD of cxl/device: one of K
// slow compute units, execution time dilated by the speed and throttle
// factors, heating the RC thermal model. WIO_DEVICE_COMPRESSION (default 1)
// time-compresses the model. If the region has a "wio-telemetry" extent the
// device publishes its telemetry words there every 100 ms. Unset, calls run
// directly at host speed.
func init() {
	deviceExec = func(ctx context.Context) (func(ctx context.Context, call func() error) error, error) {
		name := os.Getenv("WIO_DEVICE_PROFILE")
		if name == "" {
			return nil, nil
		}
		p, err := device.ProfileByName(name)
		if err != nil {
			return nil, fmt.Errorf("WIO_DEVICE_PROFILE: %w", err)
		}
		comp := 1.0
		if s := os.Getenv("WIO_DEVICE_COMPRESSION"); s != "" {
			if comp, err = strconv.ParseFloat(s, 64); err != nil || comp <= 0 {
				return nil, fmt.Errorf("WIO_DEVICE_COMPRESSION %q: want a number > 0", s)
			}
		}
		dev, err := device.New(p, device.Options{Compression: comp})
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(os.Stderr, "wio device: emulating a %s device (a model, not a measurement) at %gx time compression\n", p.Name, comp)
		publishTelemetry(ctx, dev, regionArg())
		return func(ctx context.Context, call func() error) error {
			_, err := dev.Exec(ctx, call)
			return err
		}, nil
	}
}

// regionArg finds the daemon's --region the way its flag does: the flag,
// else $WIO_REGION, else the default path.
func regionArg() string {
	args := os.Args
	for i, a := range args {
		for _, f := range []string{"-region", "--region"} {
			if a == f && i+1 < len(args) {
				return args[i+1]
			}
			if v, ok := strings.CutPrefix(a, f+"="); ok {
				return v
			}
		}
	}
	if p := os.Getenv("WIO_REGION"); p != "" {
		return p
	}
	return cxl.DefaultPath("wio")
}

// publishTelemetry publishes the device's state every 100 ms into the
// region's telemetry extent, if the region has one.
func publishTelemetry(ctx context.Context, dev *device.Device, path string) {
	r, err := cxl.Open(path, cxl.OpenOptions{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "wio device: no telemetry: %v\n", err)
		return
	}
	h, err := cxl.ReadHeader(r)
	if err == nil {
		var e cxl.Extent
		if e, err = h.Extent(telemetryExtent); err == nil {
			var tel *device.Telemetry
			if tel, err = device.NewTelemetry(r, e.Off); err == nil {
				go func() {
					defer r.Close()
					t := time.NewTicker(100 * time.Millisecond)
					defer t.Stop()
					for {
						tel.PublishSnapshot(dev.Snapshot())
						select {
						case <-ctx.Done():
							return
						case <-t.C:
						}
					}
				}()
				fmt.Fprintf(os.Stderr, "wio device: telemetry words at %#x in %s\n", e.Off, path)
				return
			}
		}
	}
	r.Close()
	fmt.Fprintf(os.Stderr, "wio device: not publishing telemetry (%v)\n", err)
}
