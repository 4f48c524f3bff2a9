package actors

import (
	"context"
	"errors"
	"fmt"

	"github.com/daxwio/daxwio/cxl"
)

// Client submits requests to actors. Clients in any process and any
// number may submit to the same actor; a Client itself is not safe for
// concurrent use (use one per goroutine).
type Client struct {
	a    *Arena
	host *cxl.Host
	tag  uint8
	// pending holds tickets sent and not yet received; a completed one
	// is harvested (output copied out, slot released) when Send waits on
	// a full ring, so clients that pipeline never hold ring slots that
	// another blocked client needs (which could deadlock them).
	pending map[Ticket]*harvested
}

type harvested struct {
	out []byte
	err error
}

// NewClient returns a client acting as host h (whose liveness lets
// daemons reclaim slots of a client that died).
func NewClient(a *Arena, h *cxl.Host) *Client {
	return &Client{a: a, host: h, tag: incTag(h.Incarnation()), pending: map[Ticket]*harvested{}}
}

// Ticket names a submitted request.
type Ticket struct {
	actor int
	Seq   uint64
}

// Send enqueues in for actor name; it blocks while the ring is full
// (backpressure, never loss) until ctx is done.
func (c *Client) Send(ctx context.Context, name string, in []byte) (Ticket, error) {
	i, err := c.a.Lookup(name)
	if err != nil {
		return Ticket{}, err
	}
	return c.SendTo(ctx, i, in)
}

// SendTo is Send with the actor's index from Arena.Lookup.
func (c *Client) SendTo(ctx context.Context, i int, in []byte) (Ticket, error) {
	a := c.a
	d, err := a.desc(i)
	if err != nil {
		return Ticket{}, err
	}
	if uint64(len(in)) > d.InCap {
		return Ticket{}, fmt.Errorf("actors: send to %s: request of %d bytes, limit %d: %w", d.Name, len(in), d.InCap, ErrTooLarge)
	}
	e := a.entryRel(i)
	var b backoff
	for {
		t := a.load(e + enTail)
		so := d.slotOff(t)
		w := a.load(so + slWord)
		sw := decodeSlot(w)
		switch {
		case w == (slotWordT{seq: t & seqMask, state: slotFree}).word():
			if !a.cas(e+enTail, t, t+1) {
				continue
			}
			me := slotWordT{seq: t & seqMask, host: c.host.Slot(), tag: c.tag}
			me.state = slotWriting
			if !a.cas(so+slWord, w, me.word()) {
				continue // abandoned while we stalled: take a new number
			}
			copy(a.bytes(so+slData, uint64(len(in))), in)
			a.store(so+slInLen, uint64(len(in)))
			wr := me.word()
			me.state = slotReady
			if !a.cas(so+slWord, wr, me.word()) {
				continue // declared dead and abandoned: resubmit
			}
			tk := Ticket{actor: i, Seq: t}
			c.pending[tk] = nil
			return tk, nil
		case sw.seq+d.Slots == t&seqMask:
			// Ring full: the previous occupant of this slot is not yet
			// released. Release what this client holds; reclaim the slot
			// if its submitter died after completion.
			c.harvest()
			c.reclaim(e, so, w, t)
			if err := b.wait(ctx); err != nil {
				return Ticket{}, fmt.Errorf("actors: send to %s: ring full: %w", d.Name, err)
			}
		}
	}
}

// reclaim frees slot so for sequence t if its previous occupant completed
// and its submitter is gone (or it was abandoned).
func (c *Client) reclaim(e, so, w, t uint64) {
	a := c.a
	sw := decodeSlot(w)
	if commitDone(a.load(e+enCommit)) <= sw.seq {
		return
	}
	if sw.state == slotAbandoned || (sw.state == slotReady && a.hostDead(sw.host, sw.tag)) {
		a.cas(so+slWord, w, slotWordT{seq: t & seqMask, state: slotFree}.word())
	}
}

// Recv waits for the completion of t, returns a copy of its output, and
// releases the slot. A request that failed in the actor returns an error
// wrapping ErrActorFailed, ErrTrap, ErrDeadline or ErrTooLarge.
func (c *Client) Recv(ctx context.Context, t Ticket) ([]byte, error) {
	return c.RecvAppend(ctx, t, nil)
}

// RecvAppend is Recv appending the output to dst.
func (c *Client) RecvAppend(ctx context.Context, t Ticket, dst []byte) ([]byte, error) {
	a := c.a
	d, err := a.desc(t.actor)
	if err != nil {
		return nil, err
	}
	h, ok := c.pending[t]
	if !ok {
		return nil, fmt.Errorf("actors: %s: request %d was not sent by this client or already received", d.Name, t.Seq)
	}
	if h != nil {
		delete(c.pending, t)
		return append(dst, h.out...), h.err
	}
	e := a.entryRel(t.actor)
	var b backoff
	for commitDone(a.load(e+enCommit)) <= t.Seq {
		if err := b.wait(ctx); err != nil {
			return nil, fmt.Errorf("actors: %s: waiting for request %d: %w", d.Name, t.Seq, err)
		}
	}
	delete(c.pending, t)
	return c.take(d, t, dst)
}

// harvest copies out and releases every completed pending request.
func (c *Client) harvest() {
	for t, h := range c.pending {
		if h != nil {
			continue
		}
		d, err := c.a.desc(t.actor)
		if err != nil || commitDone(c.a.load(c.a.entryRel(t.actor)+enCommit)) <= t.Seq {
			continue
		}
		out, err := c.take(d, t, nil)
		c.pending[t] = &harvested{out: out, err: err}
	}
}

// take reads the result of completed request t and releases its slot.
func (c *Client) take(d *desc, t Ticket, dst []byte) ([]byte, error) {
	a := c.a
	so := d.slotOff(t.Seq)
	w := a.load(so + slWord)
	sw := decodeSlot(w)
	if sw.seq != t.Seq&seqMask || sw.state != slotReady {
		if err := c.host.Err(); err != nil {
			// This client missed its lease and was declared dead, so its
			// completed slot was reclaimed: the request completed once,
			// but its output is gone.
			return nil, fmt.Errorf("actors: %s: output of request %d reclaimed after this client was fenced: %w", d.Name, t.Seq, err)
		}
		return nil, fmt.Errorf("actors: %s: slot of request %d holds %+v: %w", d.Name, t.Seq, sw, ErrCorrupt)
	}
	n, status, err := slotResult(a.load(so+slResult), d.OutCap)
	if err == nil {
		out := a.bytes(so+slData+align(d.InCap, 64), n)
		dst = append(dst, out...)
		err = statusErr(d.Name, t.Seq, status, dst)
	}
	a.cas(so+slWord, w, slotWordT{seq: (t.Seq + d.Slots) & seqMask, state: slotFree}.word())
	if err != nil {
		return nil, err
	}
	return dst, nil
}

func statusErr(name string, seq uint64, status int, out []byte) error {
	var s error
	switch status {
	case stOK:
		return nil
	case stActorError:
		s = ErrActorFailed
	case stTrap:
		s = ErrTrap
	case stDeadline:
		s = ErrDeadline
	case stTooLarge:
		s = ErrTooLarge
	case stAbandoned:
		s = ErrAbandoned
	case stBadModule:
		s = ErrBadModule
	default:
		s = ErrCorrupt
	}
	return fmt.Errorf("actors: %s: request %d: %s: %w", name, seq, truncate(out, 512), s)
}

// Call is Send then Recv.
func (c *Client) Call(ctx context.Context, name string, in []byte) ([]byte, error) {
	t, err := c.Send(ctx, name, in)
	if err != nil {
		return nil, err
	}
	return c.Recv(ctx, t)
}

// IsRequestError reports whether err is the failure of one request in the
// actor (as opposed to a failure to submit or wait).
func IsRequestError(err error) bool {
	for _, s := range []error{ErrActorFailed, ErrTrap, ErrDeadline, ErrTooLarge, ErrAbandoned, ErrBadModule} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
