package pcache

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/daxwio/daxwio/internal/proctest"
)

const backingID = 0xb0d1

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(fmt.Sprintf("bad int %q", s))
	}
	return n
}

func init() {
	// reader: path pages backing ops seed [slow] — random overlapping
	// pages, every byte checked, one in five through a pin; "slow" makes
	// every backing read take 300µs.
	proctest.Register("reader", func(args []string) error {
		pages, ops, seed := atoi(args[1]), atoi(args[3]), atoi(args[4])
		e, err := attach(args[0], pages)
		if err != nil {
			return err
		}
		defer e.r.Close()
		c, h, err := e.openErr("reader-" + args[4])
		if err != nil {
			return err
		}
		defer h.Leave()
		defer c.Close()
		f, err := os.Open(args[2])
		if err != nil {
			return err
		}
		defer f.Close()
		s := &src{id: backingID, e: e, pages: uint64(pages), file: f}
		if len(args) > 5 && args[5] == "slow" {
			// Mostly inside fills when killed.
			s.hook = func(uint64) { time.Sleep(300 * time.Microsecond) }
		}
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		buf := make([]byte, PageSize)
		for range ops {
			var p uint64
			if rng.IntN(2) == 0 {
				p = uint64(rng.IntN(pages / 16))
			} else {
				p = uint64(rng.IntN(pages))
			}
			if rng.IntN(5) == 0 {
				pin, err := c.Pin(s, p)
				if err != nil {
					return err
				}
				err = checkPage(backingID, p, 0, pin.Bytes())
				pin.Unpin()
				if err != nil {
					return err
				}
				continue
			}
			n, err := c.Read(s, p, 0, buf)
			if err != nil {
				return err
			}
			if err := checkPage(backingID, p, 0, buf[:n]); err != nil {
				return err
			}
		}
		return nil
	})
	// stall-filler: path page — fills page and stalls forever in the
	// backing read, after raising signal word 0.
	proctest.Register("stall-filler", func(args []string) error {
		e, err := attach(args[0], 64)
		if err != nil {
			return err
		}
		c, _, err := e.openErr("stall-filler")
		if err != nil {
			return err
		}
		page := uint64(atoi(args[1]))
		s := &src{id: backingID, e: e, hook: func(p uint64) {
			if p == page {
				e.r.Store(e.sigOff(0), 1)
				select {}
			}
		}}
		_, err = c.Read(s, page, 0, make([]byte, PageSize))
		return err
	})
	// pinner: path n — pins pages 0..n-1 (all in one window), raises signal
	// word 1 and waits to be killed.
	proctest.Register("pinner", func(args []string) error {
		e, err := attach(args[0], 64)
		if err != nil {
			return err
		}
		c, _, err := e.openErr("pinner")
		if err != nil {
			return err
		}
		c.hash = func(uint64, uint64) uint64 { return 0 }
		for p := range uint64(atoi(args[1])) {
			if _, err := c.Pin(&src{id: backingID}, p); err != nil {
				return err
			}
		}
		e.r.Store(e.sigOff(1), 1)
		select {}
	})
}

// N processes read overlapping random pages of a backing file 8x the cache.
func TestProcessesShareOneCache(t *testing.T) {
	const slots, pages, procs = 128, 1024, 3
	ops := 4000
	if testing.Short() {
		ops = 800
	}
	e := newEnv(t, slots, pages, 10*time.Second)
	backing := writeBacking(t, backingID, pages)
	var cs []*proctest.Child
	for i := range procs {
		cs = append(cs, proctest.Start(t, "reader", e.path, strconv.Itoa(pages), backing, strconv.Itoa(ops), strconv.Itoa(i)))
	}
	proctest.WaitAll(t, cs...)
	e.checkOnce(t)
	rep, err := Inspect(e.r, e.ext.Off, e.ext.Len)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Pinned != 0 || rep.Pending != 0 || rep.Evicting != 0 || len(rep.Hosts) != 0 || !rep.Healthy() {
		t.Fatalf("after all readers left: %v", rep)
	}
	t.Logf("%v", rep)
}

func waitSignal(t *testing.T, e *env, i int, c *proctest.Child) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for e.r.Load(e.sigOff(i)) == 0 {
		if time.Now().After(deadline) || c.Exited() {
			t.Fatalf("child never signalled: %s", c.Output())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// A filler SIGKILLed mid-fill: after its lease the slot is taken over and
// a reader gets the right bytes.
func TestKilledFillerSlotReclaimed(t *testing.T) {
	e := newEnv(t, 16, 64, time.Second)
	c := proctest.Start(t, "stall-filler", e.path, "7")
	waitSignal(t, e, 0, c)
	rep, _ := Inspect(e.r, e.ext.Off, e.ext.Len)
	if rep.Pending != 1 {
		t.Fatalf("while the child fills: %v", rep)
	}
	c.Kill()
	c.Wait()
	me, _ := e.open(t, "survivor")
	readPage(t, me, &src{id: backingID, e: e}, 7)
	if st := me.Stats(); st.Takeovers != 1 || st.Fills != 1 {
		t.Fatalf("survivor stats: %v", st)
	}
	if n := e.r.Load(e.readsOff(7)); n != 2 {
		t.Fatalf("page 7 read %d times, want 2 (the dead filler's and ours)", n)
	}
	rep, _ = Inspect(e.r, e.ext.Off, e.ext.Len)
	if rep.Pending != 0 || rep.Valid != 1 || len(rep.Hosts) != 1 {
		t.Fatalf("after takeover: %v", rep)
	}
}

// A reader SIGKILLed while it pins every slot of a window: its pins are
// released when it is reaped and the slots become evictable again.
func TestKilledPinnerReleased(t *testing.T) {
	e := newEnv(t, 8, 64, time.Second)
	c := proctest.Start(t, "pinner", e.path, "8")
	waitSignal(t, e, 1, c)
	rep, _ := Inspect(e.r, e.ext.Off, e.ext.Len)
	if rep.Pinned != 8 {
		t.Fatalf("child pinned: %v", rep)
	}
	c.Kill()
	c.Wait()
	me, _ := e.open(t, "survivor")
	me.hash = func(uint64, uint64) uint64 { return 0 }
	readPage(t, me, &src{id: backingID}, 20)
	if st := me.Stats(); st.PinsReleased != 8 || st.Reaped != 1 {
		t.Fatalf("survivor stats: %v", st)
	}
	rep, _ = Inspect(e.r, e.ext.Off, e.ext.Len)
	if rep.Pinned != 0 || len(rep.Hosts) != 1 {
		t.Fatalf("after reaping: %v", rep)
	}
}

// Readers are SIGKILLed at random points of a busy run (mid-fill, pinned,
// mid-eviction, whatever they were doing) while others keep reading:
// every survivor's bytes are right, survivors are never wedged past the
// lease, and once the dead are reaped nothing stays pinned, PENDING or
// EVICTING.
func TestRandomKillsDuringReads(t *testing.T) {
	const slots, pages = 64, 512
	e := newEnv(t, slots, pages, 3*time.Second)
	backing := writeBacking(t, backingID, pages)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	ops := "3000"
	if testing.Short() {
		ops = "800"
	}
	var survivors []*proctest.Child
	for round := range 2 {
		victim := proctest.Start(t, "reader", e.path, strconv.Itoa(pages), backing, "100000000", strconv.Itoa(100+round), "slow")
		for i := range 2 {
			survivors = append(survivors, proctest.Start(t, "reader", e.path, strconv.Itoa(pages), backing, ops, strconv.Itoa(10*round+i)))
		}
		time.Sleep(time.Duration(200+rng.IntN(300)) * time.Millisecond)
		victim.Kill()
		victim.Wait()
	}
	proctest.WaitAll(t, survivors...)
	me, _ := e.open(t, "checker")
	deadline := time.Now().Add(20 * time.Second)
	for {
		me.ReapDead()
		rep, err := Inspect(e.r, e.ext.Off, e.ext.Len)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Pinned == 0 && rep.Pending == 0 && rep.Evicting == 0 && len(rep.Hosts) == 1 && rep.Healthy() {
			t.Logf("%v", rep)
			if rep.Takeovers == 0 {
				t.Log("no victim died mid-fill this run")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dead readers never fully reaped: %v", rep)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s := &src{id: backingID}
	for p := range uint64(pages) {
		readPage(t, me, s, p)
	}
	verifyAll(t, me)
}
