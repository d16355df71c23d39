package emulator

import (
	"io"
	"time"
)

// progressEvery is how often a long operation (a snapshot stream, a
// resharding) logs how far it got, so a user watching the log of a minutes
// long operation sees it advance rather than silence.
const progressEvery = 5 * time.Second

// progressTicker says when the next progress line is due.
type progressTicker struct{ next time.Time }

// due reports whether progressEvery has passed since the last line (or
// the first call).
func (p *progressTicker) due() bool {
	now := time.Now()
	if p.next.IsZero() {
		p.next = now.Add(progressEvery)
		return false
	}
	if now.Before(p.next) {
		return false
	}
	p.next = now.Add(progressEvery)
	return true
}

// progressReader counts the bytes read through it and calls report with
// the total every progressEvery.
type progressReader struct {
	r      io.Reader
	n      int64
	tick   progressTicker
	report func(bytes int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.tick.due() {
		p.report(p.n)
	}
	return n, err
}
