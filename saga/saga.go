// Package saga is a small orchestrator of sagas: a multi-step transaction
// across services, each step with a compensation that undoes it. The
// orchestrator persists the saga log before it acts (see Store), so that
// after a crash Run resumes every unfinished saga forward, or compensates
// it, from where the log says it stood; it retries each step under its own
// timeout and retry policy, compensates the completed steps in reverse
// order, and parks a saga whose compensation keeps failing in the manual
// state, for an operator to retry or abort (Admin, `strangler sagas`).
//
// Each step gets an idempotency key (Exec.Key) that it passes to its
// participant. The participant side is Guard: inside the participant's own
// transaction it answers a repeated step with its first result, turns the
// compensation of a step that never ran into a recorded no-op (null
// compensation), and refuses that step if it arrives after all (hanging).
//
// Nothing here knows a particular monolith or service; docs/sagas.md shows
// how to define a saga.
package saga

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// State is where a saga stands.
type State string

// The states of a saga. Running and compensating sagas are unfinished:
// Run resumes them after a restart. Manual waits for an operator; the
// others are final.
const (
	// Running sagas are executing their steps forward.
	Running State = "running"
	// Compensating sagas are undoing their completed steps, last first.
	Compensating State = "compensating"
	// Completed sagas ran every step.
	Completed State = "completed"
	// Compensated sagas undid every step that may have taken effect.
	Compensated State = "compensated"
	// Manual sagas have a compensation that kept failing; Retry resumes
	// the compensation, Abort gives up on it.
	Manual State = "manual"
	// Aborted sagas were given up by an operator while manual: the steps
	// not compensated yet stay as they are, for a person to put right.
	Aborted State = "aborted"
)

// States lists every state, in the order a listing shows them.
var States = []State{Running, Compensating, Manual, Completed, Compensated, Aborted}

// Valid reports whether s is one of the States.
func (s State) Valid() bool {
	for _, v := range States {
		if s == v {
			return true
		}
	}
	return false
}

// StateNames lists the states, comma-separated, for messages.
func StateNames() string {
	names := make([]string, len(States))
	for i, s := range States {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// Final reports whether no step will run for a saga in s without an
// operator.
func (s State) Final() bool { return s != Running && s != Compensating }

// Definition is a kind of saga: its name and its steps, in order.
type Definition struct {
	// Name identifies the definition; each saga records it, so that a
	// restart knows which steps to resume.
	Name string
	// Steps run in order; on a failure the ones that ran are compensated
	// in reverse order. Names must be unique within the definition.
	Steps []Step
}

// Step is one step of a saga.
type Step struct {
	// Name identifies the step within its definition and, with the saga's
	// id, makes the step's idempotency key.
	Name string
	// Do performs the step. It is called again with the same key after a
	// failed attempt or a crash, so the participant must be idempotent on
	// Exec.Key (see Guard). An error wrapped in Permanent stops the retries
	// and starts the compensation at once.
	Do func(ctx context.Context, x *Exec) error
	// Compensate undoes Do. It is also called for the step whose Do failed
	// or timed out, since Do may have taken effect at the participant; a
	// participant that never saw the key records a null compensation (see
	// Guard). If nil, the step has nothing to undo.
	Compensate func(ctx context.Context, x *Exec) error
	// Timeout bounds each attempt of Do and of Compensate. If zero, 30 s.
	Timeout time.Duration
	// Retry is the retry policy of Do, and of Compensate when
	// CompensateRetry is zero.
	Retry Retry
	// CompensateRetry is the retry policy of Compensate. A compensation
	// must outlast what a forward step may give up on, such as a
	// participant that restarts, before the saga waits for an operator
	// (Manual), so it usually allows more attempts than Retry. If zero,
	// Retry.
	CompensateRetry Retry
}

// Retry is a retry policy: attempts with an exponential backoff and jitter
// between them.
type Retry struct {
	// MaxAttempts counts the attempts including the first. If zero, 3; 1
	// means no retry.
	MaxAttempts int
	// Backoff is the wait after the first failed attempt; each later wait
	// doubles it. If zero, 100 ms.
	Backoff time.Duration
	// MaxBackoff caps a wait. If zero, 5 s.
	MaxBackoff time.Duration
	// Jitter is the fraction of each wait drawn at random, so that sagas
	// that failed together do not retry together. If zero, 0.2; negative
	// turns it off.
	Jitter float64
}

func (r Retry) withDefaults() Retry {
	if r.MaxAttempts <= 0 {
		r.MaxAttempts = 3
	}
	if r.Backoff <= 0 {
		r.Backoff = 100 * time.Millisecond
	}
	if r.MaxBackoff <= 0 {
		r.MaxBackoff = 5 * time.Second
	}
	if r.Jitter == 0 {
		r.Jitter = 0.2
	}
	if r.Jitter < 0 || r.Jitter > 1 {
		r.Jitter = min(max(r.Jitter, 0), 1)
	}
	return r
}

// wait is the backoff after failed attempt n (1-based).
func (r Retry) wait(n int) time.Duration {
	d := r.Backoff
	for i := 1; i < n && d < r.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, r.MaxBackoff)
	if r.Jitter > 0 {
		j := time.Duration(float64(d) * r.Jitter)
		d = d - j + time.Duration(rand.Int64N(int64(2*j)+1))
	}
	return d
}

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

// Permanent marks err as one that retrying cannot fix, such as a refusal by
// the participant (out of stock, over the credit limit): the step is not
// tried again, and the saga compensates. A nil err stays nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err is marked by Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// Exec is what a step's Do and Compensate get: the saga's identity, the
// step's idempotency key, and the saga's data.
type Exec struct {
	// SagaID is the saga's id.
	SagaID string
	// Saga is the definition's name.
	Saga string
	// Step is the step's name.
	Step string
	// Key is the step's idempotency key, the same for every attempt, for
	// Do and for Compensate: pass it to the participant.
	Key string
	// Attempt counts the attempts of this call, from 1.
	Attempt int

	data json.RawMessage
}

// HeaderIdempotencyKey is the HTTP header that carries Exec.Key to an HTTP
// participant, for its Guard.
const HeaderIdempotencyKey = "Idempotency-Key"

// Key returns the idempotency key of step in saga id: "<id>/<step>".
func Key(id, step string) string { return id + "/" + step }

// Decode reads the saga's data into v.
func (x *Exec) Decode(v any) error {
	if err := json.Unmarshal(x.data, v); err != nil {
		return fmt.Errorf("saga %s step %s: decode data: %w", x.SagaID, x.Step, err)
	}
	return nil
}

// Update replaces the saga's data with v, such as the data with the
// reservation id a step got. The orchestrator persists it with the step's
// success, so the later steps and the compensations see it; an update by
// a failed attempt is dropped.
func (x *Exec) Update(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("saga %s step %s: encode data: %w", x.SagaID, x.Step, err)
	}
	x.data = b
	return nil
}

// Data returns the saga's data as JSON.
func (x *Exec) Data() json.RawMessage { return x.data }

// validate checks a definition once, when it is registered.
func (d *Definition) validate() error {
	if d.Name == "" {
		return errors.New("saga definition needs a name")
	}
	if len(d.Steps) == 0 {
		return fmt.Errorf("saga definition %q has no steps", d.Name)
	}
	seen := map[string]bool{}
	for i, s := range d.Steps {
		switch {
		case s.Name == "":
			return fmt.Errorf("saga definition %q: step %d needs a name", d.Name, i)
		case seen[s.Name]:
			return fmt.Errorf("saga definition %q: step name %q is used twice", d.Name, s.Name)
		case s.Do == nil:
			return fmt.Errorf("saga definition %q: step %q needs a Do", d.Name, s.Name)
		}
		seen[s.Name] = true
	}
	return nil
}
