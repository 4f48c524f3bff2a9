package main

import (
	"context"
	"os"
	"testing"
)

func TestDeviceExecFromEnv(t *testing.T) {
	t.Setenv("WIO_DEVICE_PROFILE", "")
	if ex, err := deviceExec(context.Background()); ex != nil || err != nil {
		t.Fatalf("unset: %v %v", ex != nil, err)
	}
	t.Setenv("WIO_DEVICE_PROFILE", "nosuch")
	if _, err := deviceExec(context.Background()); err == nil {
		t.Fatal("accepted an unknown profile")
	}
	t.Setenv("WIO_DEVICE_PROFILE", "scaleflux")
	t.Setenv("WIO_DEVICE_COMPRESSION", "-3")
	if _, err := deviceExec(context.Background()); err == nil {
		t.Fatal("accepted a negative compression")
	}
	t.Setenv("WIO_DEVICE_COMPRESSION", "30")
	t.Setenv("WIO_REGION", t.TempDir()+"/none") // no region: runs without telemetry
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ex, err := deviceExec(ctx)
	if err != nil || ex == nil {
		t.Fatalf("%v", err)
	}
	ran := false
	if err := ex(ctx, func() error { ran = true; return nil }); err != nil || !ran {
		t.Fatalf("call ran %v: %v", ran, err)
	}
}

func TestRegionArg(t *testing.T) {
	old := os.Args
	defer func() { os.Args = old }()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"wio", "device", "-region", "/a"}, "/a"},
		{[]string{"wio", "device", "--region=/b", "-v"}, "/b"},
	} {
		os.Args = c.args
		if got := regionArg(); got != c.want {
			t.Errorf("%v: %q", c.args, got)
		}
	}
	os.Args = []string{"wio", "device"}
	t.Setenv("WIO_REGION", "/c")
	if got := regionArg(); got != "/c" {
		t.Errorf("env: %q", got)
	}
}
