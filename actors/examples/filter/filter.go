// Package filter is the record filter actor. Its deploy argument is a
// predicate "COL OP VALUE" (COL a 0-based field index, OP one of
// == != < <= > >= ~ where ~ means "contains"); numbers compare as
// integers when both sides parse as integers. A request is records
// separated by '\n' with fields separated by ','; the output is the
// matching records, each followed by '\n'.
//
// State: [0,8) records matched so far, [8,16) predicate length, [16,..)
// the predicate text, so the predicate travels with the actor.
package filter

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/daxwio/daxwio/actors/examples/abi"
)

// StateSize is the arena the actor needs (predicates up to 240 bytes).
const StateSize = 256

// Pred is a parsed predicate.
type Pred struct {
	Col   int
	Op    string
	Val   []byte
	num   int64
	isNum bool
}

var ops = []string{"==", "!=", "<=", ">=", "<", ">", "~"}

// Parse parses "COL OP VALUE".
func Parse(s string) (Pred, error) {
	s = strings.TrimSpace(s)
	for i := 0; i < len(s); i++ {
		for _, op := range ops {
			if strings.HasPrefix(s[i:], op) {
				col, err := strconv.Atoi(strings.TrimSpace(s[:i]))
				if err != nil || col < 0 {
					return Pred{}, fmt.Errorf("filter: predicate %q: column must be a non-negative integer", s)
				}
				p := Pred{Col: col, Op: op, Val: []byte(strings.TrimSpace(s[i+len(op):]))}
				p.num, err = strconv.ParseInt(string(p.Val), 10, 64)
				p.isNum = err == nil
				return p, nil
			}
		}
	}
	return Pred{}, fmt.Errorf("filter: predicate %q: want COL OP VALUE with OP in %v", s, ops)
}

// Match reports whether one record matches.
func (p *Pred) Match(rec []byte) bool {
	f := rec
	for i := 0; i < p.Col; i++ {
		j := bytes.IndexByte(f, ',')
		if j < 0 {
			return false
		}
		f = f[j+1:]
	}
	if j := bytes.IndexByte(f, ','); j >= 0 {
		f = f[:j]
	}
	if p.Op == "~" {
		return bytes.Contains(f, p.Val)
	}
	c := bytes.Compare(f, p.Val)
	if p.isNum {
		if v, err := strconv.ParseInt(string(f), 10, 64); err == nil {
			c = 0
			if v < p.num {
				c = -1
			} else if v > p.num {
				c = 1
			}
		}
	}
	switch p.Op {
	case "==":
		return c == 0
	case "!=":
		return c != 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	default:
		return c >= 0
	}
}

// Actor implements abi.Actor.
type Actor struct {
	cached string
	pred   Pred
}

func (a *Actor) Init(st abi.State, arg []byte) error {
	if st.Size() < StateSize {
		return fmt.Errorf("filter: state arena %d bytes, need %d", st.Size(), StateSize)
	}
	if len(arg) > StateSize-16 {
		return fmt.Errorf("filter: predicate of %d bytes, limit %d", len(arg), StateSize-16)
	}
	if _, err := Parse(string(arg)); err != nil {
		return err
	}
	if err := abi.WriteU64(st, 8, uint64(len(arg))); err != nil {
		return err
	}
	return st.Write(16, arg)
}

func (a *Actor) Handle(st abi.State, in, out []byte) ([]byte, error) {
	n, err := abi.ReadU64(st, 8)
	if err != nil {
		return nil, err
	}
	if n > StateSize-16 {
		return nil, errors.New("filter: corrupt predicate length in state")
	}
	pb := make([]byte, n)
	if err := st.Read(16, pb); err != nil {
		return nil, err
	}
	if string(pb) != a.cached || a.cached == "" {
		if a.pred, err = Parse(string(pb)); err != nil {
			return nil, err
		}
		a.cached = string(pb)
	}
	out = out[:0]
	var matched uint64
	for len(in) > 0 {
		rec := in
		if j := bytes.IndexByte(in, '\n'); j >= 0 {
			rec, in = in[:j], in[j+1:]
		} else {
			in = nil
		}
		if len(rec) > 0 && a.pred.Match(rec) {
			out = append(append(out, rec...), '\n')
			matched++
		}
	}
	m, err := abi.ReadU64(st, 0)
	if err != nil {
		return nil, err
	}
	return out, abi.WriteU64(st, 0, m+matched)
}
