package actors

import (
	"context"
	"fmt"
	"sync"
)

// Pipeline is the seam through which a file system (daxfs, later) puts
// actors on a directory's I/O path without knowing about rings or wasm:
// it hands the bytes of a write (or a read) to Apply and stores what comes
// back.
type Pipeline interface {
	Apply(ctx context.Context, in []byte) ([]byte, error)
}

// NewPipeline returns a Pipeline that sends its input through the named
// actors in order, each stage's output being the next stage's input. It is
// safe for concurrent use (calls are serialised on c).
func NewPipeline(c *Client, stages ...string) Pipeline {
	return &pipeline{c: c, stages: stages}
}

type pipeline struct {
	mu     sync.Mutex
	c      *Client
	stages []string
}

func (p *pipeline) Apply(ctx context.Context, in []byte) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.stages {
		out, err := p.c.Call(ctx, s, in)
		if err != nil {
			return nil, fmt.Errorf("actors: pipeline stage %s: %w", s, err)
		}
		in = out
	}
	return in, nil
}
