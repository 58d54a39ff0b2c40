// Package loadgen sends work at a fixed rate (an open loop, as wrk2 does)
// and keeps its own lag apart from the system's answers: a send that starts
// late because the generator fell behind (its workers all busy, or its
// process starved of CPU) is counted as late with its delay, never as a
// failed request. The caller judges the answers; the Pacer only says how
// well it kept to its plan. The guides' load (docs/guides_test.go) and the
// order benchmark (bench/rate) use it; the orders benchmark
// (extracted/orders BenchmarkPlace), a closed loop, uses its Percentile and
// PostJSON.
package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"
)

// Config sets the plan of a Pacer.
type Config struct {
	// Rate is how many sends per second are planned. If zero, 100.
	Rate int
	// Workers is how many sends may be in flight at once. A send planned
	// while every worker is busy waits, and its delay counts as lag. If
	// zero, 256.
	Workers int
	// Late is how far behind its planned time a send may start and still
	// count as on time. If zero, 1s.
	Late time.Duration
}

// Send makes one planned send on worker w (0 to Workers-1), lag after its
// planned time.
type Send func(w int, lag time.Duration)

// Lag is how well a Pacer kept to its plan.
type Lag struct {
	// Sent is how many sends started.
	Sent int
	// Late is how many of them started more than Config.Late after their
	// planned time.
	Late int
	// Unsent is how many sends were planned more than Late before the
	// Pacer stopped but never started, because it was that far behind.
	Unsent int
	// Max is the largest delay of a send that started.
	Max time.Duration
	// LateAfter is Config.Late, the bound Late counts against.
	LateAfter time.Duration
}

// Planned is every send the plan held until the stop: sent or not.
func (l Lag) Planned() int { return l.Sent + l.Unsent }

// LateFraction is the share of planned sends that were late or never sent.
func (l Lag) LateFraction() float64 {
	if l.Planned() == 0 {
		return 0
	}
	return float64(l.Late+l.Unsent) / float64(l.Planned())
}

// String says it in one line, such as "12000 planned, 11990 sent, 3 late
// by > 1s, 10 unsent (0.11%), max delay 1.2s".
func (l Lag) String() string {
	return fmt.Sprintf("%d planned, %d sent, %d late by > %s, %d unsent (%.2f%%), max delay %s",
		l.Planned(), l.Sent, l.Late, l.LateAfter, l.Unsent, 100*l.LateFraction(), l.Max.Round(time.Millisecond))
}

// Pacer plans sends at a fixed rate and hands each to a worker.
type Pacer struct {
	cfg      Config
	interval time.Duration
	send     Send

	mu      sync.Mutex
	lag     Lag
	paused  bool
	resumed chan struct{}
}

// New returns a pacer that will call send at cfg.Rate. It starts nothing:
// Run does.
func New(cfg Config, send Send) *Pacer {
	if cfg.Rate <= 0 {
		cfg.Rate = 100
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 256
	}
	if cfg.Late <= 0 {
		cfg.Late = time.Second
	}
	return &Pacer{cfg: cfg, interval: time.Second / time.Duration(cfg.Rate), send: send,
		lag: Lag{LateAfter: cfg.Late}, resumed: make(chan struct{})}
}

// Pause stops planning sends until Resume; the sends in flight finish. The
// time paused is not part of the plan, so it adds no lag.
func (p *Pacer) Pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.paused {
		p.paused = true
		p.resumed = make(chan struct{})
	}
}

// Resume plans sends again, from now on.
func (p *Pacer) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused {
		p.paused = false
		close(p.resumed)
	}
}

// waitResumed returns when the pacer is not paused, false if ctx ended
// first; resumed says whether it had to wait.
func (p *Pacer) waitResumed(ctx context.Context) (ok, resumed bool) {
	p.mu.Lock()
	paused, ch := p.paused, p.resumed
	p.mu.Unlock()
	if !paused {
		return true, false
	}
	select {
	case <-ch:
		return true, true
	case <-ctx.Done():
		return false, false
	}
}

// Run plans sends until ctx ends, then waits for the sends in flight and
// returns the lag.
func (p *Pacer) Run(ctx context.Context) Lag {
	jobs := make(chan time.Time)
	var wg sync.WaitGroup
	for w := range p.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for planned := range jobs {
				lag := time.Since(planned)
				p.mu.Lock()
				p.lag.Sent++
				if lag > p.cfg.Late {
					p.lag.Late++
				}
				p.lag.Max = max(p.lag.Max, lag)
				p.mu.Unlock()
				p.send(w, max(lag, 0))
			}
		}()
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	next := time.Now()
	for {
		ok, resumed := p.waitResumed(ctx)
		if !ok {
			break
		}
		if resumed {
			next = time.Now()
		}
		if d := time.Until(next); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case jobs <- next:
			next = next.Add(p.interval)
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	// The sends planned more than Late before the stop that no worker
	// took: the plan's debt, which would have been late had it been sent.
	if behind := time.Since(next) - p.cfg.Late; behind >= 0 {
		p.mu.Lock()
		if !p.paused {
			p.lag.Unsent += 1 + int(behind/p.interval)
		}
		p.mu.Unlock()
	}
	close(jobs)
	wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lag
}

// Percentile returns the q-quantile (0 to 1) of ds, sorting ds in place;
// 0 when ds is empty.
func Percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	if !sort.SliceIsSorted(ds, func(i, j int) bool { return ds[i] < ds[j] }) {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	}
	return ds[int(float64(len(ds)-1)*q)]
}

// PostJSON posts body as JSON to url and reads the answer whole: its
// status and body, or the error that kept it from arriving.
func PostJSON(client *http.Client, url string, body []byte) (int, []byte, error) {
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}
