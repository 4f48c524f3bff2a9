package cxl

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/daxwio/daxwio/internal/proctest"
)

// The counter lives in extent "a"; each process also owns a private word.
func init() {
	proctest.Register("cas-counter", func(args []string) error {
		path, id := args[0], mustAtoi(args[1])
		goroutines, iters := mustAtoi(args[2]), mustAtoi(args[3])
		r, err := Open(path, OpenOptions{})
		if err != nil {
			return err
		}
		defer r.Close()
		h, err := ReadHeader(r)
		if err != nil {
			return err
		}
		a, err := h.Extent("a")
		if err != nil {
			return err
		}
		ht, err := OpenHostTable(r, h)
		if err != nil {
			return err
		}
		me, err := ht.Join(JoinOptions{Name: "counter-" + args[1]})
		if err != nil {
			return err
		}
		defer me.Leave()
		shared, own := a.Off, a.Off+8+8*uint64(id)
		var wg sync.WaitGroup
		for range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range iters {
					for {
						v := r.Load(shared)
						if r.CAS(shared, v, v+1) {
							break
						}
					}
					r.Add(own, 1)
				}
			}()
		}
		wg.Wait()
		return nil
	})
}

func mustAtoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(fmt.Sprintf("bad int %q", s))
	}
	return n
}

// Processes x goroutines CAS-increment one word: the total is exact.
func TestCASCounterProcesses(t *testing.T) {
	r, h := formatted(t, 1<<20, 2*time.Second)
	const procs, goroutines, iters = 4, 4, 20000
	var cs []*proctest.Child
	for i := range procs {
		cs = append(cs, proctest.Start(t, "cas-counter", r.Path(), strconv.Itoa(i), strconv.Itoa(goroutines), strconv.Itoa(iters)))
	}
	proctest.WaitAll(t, cs...)
	a, _ := h.Extent("a")
	if got, want := r.Load(a.Off), uint64(procs*goroutines*iters); got != want {
		t.Fatalf("shared counter %d, want %d (lost %d updates)", got, want, int64(want)-int64(got))
	}
	for i := range procs {
		if got := r.Load(a.Off + 8 + 8*uint64(i)); got != goroutines*iters {
			t.Errorf("process %d counter %d", i, got)
		}
	}
	ht, _ := OpenHostTable(r, h)
	if n := ht.LiveHosts(); n != 0 {
		t.Errorf("%d hosts still live after all left", n)
	}
}

// A process killed while holding a slot: after the lease, its slot is taken
// over and the dead incarnation is fenced.
func TestKilledHostSlotTakenOver(t *testing.T) {
	r, h := formatted(t, 1<<20, 300*time.Millisecond)
	c := proctest.Start(t, "cas-counter", r.Path(), "0", "1", "100000000")
	ht, _ := OpenHostTable(r, h)
	var victim HostInfo
	deadline := time.Now().Add(10 * time.Second)
	for {
		hs := ht.Hosts()
		if len(hs) == 1 && hs[0].Alive {
			victim = hs[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("child never joined: %s", c.Output())
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.Kill()
	c.Wait()
	for ht.Alive(victim.Slot, victim.Incarnation) {
		time.Sleep(20 * time.Millisecond)
	}
	if !ht.Fence(victim.Slot, victim.Incarnation) {
		t.Fatal("expired incarnation not fenced")
	}
	me, err := ht.Join(JoinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer me.Leave()
	if ht.Alive(victim.Slot, victim.Incarnation) {
		t.Fatal("dead incarnation alive again")
	}
}
