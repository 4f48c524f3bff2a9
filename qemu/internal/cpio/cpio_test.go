package cpio

import (
	"bytes"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if err := w.MkdirAll("/bin/sub"); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFile("bin/busybox", 0o755, []byte("abc")); err != nil {
		t.Fatal(err)
	}
	if err := w.Symlink("busybox", "/bin/sh"); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFile("init", 0o755, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if buf.Len()%4 != 0 {
		t.Fatalf("archive length %d not 4-aligned", buf.Len())
	}
	es, err := Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name string
		mode uint32
		data string
	}{
		{"bin", TypeDir | 0o755, ""},
		{"bin/sub", TypeDir | 0o755, ""},
		{"bin/busybox", TypeRegular | 0o755, "abc"},
		{"bin/sh", TypeSymlink | 0o777, "busybox"},
		{"init", TypeRegular | 0o755, ""},
	}
	if len(es) != len(want) {
		t.Fatalf("got %d entries, want %d: %+v", len(es), len(want), es)
	}
	for i, e := range es {
		if e.Name != want[i].name || e.Mode != want[i].mode || string(e.Data) != want[i].data {
			t.Errorf("entry %d = {%q %o %q}, want %+v", i, e.Name, e.Mode, e.Data, want[i])
		}
	}
}

func TestHeaderBytes(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if err := w.Mkdir("a", 0o700); err != nil {
		t.Fatal(err)
	}
	// magic, ino 1, mode 040700, uid, gid, nlink 2, mtime, size 0, 4x dev,
	// namesize 2 ("a\0"), check.
	want := "070701" + "00000001" + "000041C0" + "00000000" + "00000000" + "00000002" +
		"00000000" + "00000000" + "00000000" + "00000000" + "00000000" + "00000000" +
		"00000002" + "00000000" + "a\x00"
	if got := buf.String(); got != want {
		t.Fatalf("header\n got %q\nwant %q", got, want)
	}
}

func TestErrors(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if err := w.WriteFile("no/parent", 0o644, nil); err == nil || !strings.Contains(err.Error(), "parent directory") {
		t.Errorf("missing parent: err = %v", err)
	}
	if err := w.WriteFile("x", 0o644, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFile("/x", 0o644, nil); err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Errorf("duplicate: err = %v", err)
	}
	if err := w.Mkdir("/", 0o755); err == nil {
		t.Error("root name accepted")
	}
	if err := w.Symlink("", "l"); err == nil {
		t.Error("empty symlink target accepted")
	}
	if !w.Has("/x") || w.Has("y") {
		t.Error("Has is wrong")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFile("late", 0o644, nil); err == nil {
		t.Error("write after Close accepted")
	}
	if _, err := Read(strings.NewReader("070701short")); err == nil {
		t.Error("truncated archive accepted")
	}
	if _, err := Read(strings.NewReader(strings.Repeat("x", 200))); err == nil {
		t.Error("bad magic accepted")
	}
}
