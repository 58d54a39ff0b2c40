// Package balance holds the proxy's load-balancing policies: a Selector
// chooses which instance of a backend takes a request, and a registry of
// named constructors, in the manner of Caddy's selection policies, maps a
// route table's balance setting to one. The route table is checked
// against the registry, and each backend builds its own Selector once,
// so that the hot path calls a method instead of switching on a string.
package balance

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Instances is the view of a backend's instances that a Selector chooses
// among, by index. Implementations must not allocate.
type Instances interface {
	// Len is the number of instances.
	Len() int
	// Usable reports whether instance i may take a request at now (unix
	// nanoseconds): healthy and not ejected.
	Usable(i int, now int64) bool
	// InFlight is the number of requests instance i has in flight.
	InFlight(i int) int64
}

// Selector picks the index of a usable instance other than skip (the one
// that just failed, or -1), or -1 when there is none; the caller then
// decides what to do ("panic routing"). A Selector is used by many
// goroutines at once and must not allocate.
type Selector interface {
	Select(list Instances, skip int, now int64) int
}

// Default is the policy of a backend whose balance setting is empty.
const Default = "round_robin"

var (
	mu       sync.RWMutex
	policies = map[string]func() Selector{}
)

// Register makes a policy available under name, for route tables to
// name. A constructor is called once per backend, so a Selector may keep
// state of its own. Register panics on a duplicate name, like
// database/sql.Register, since two policies of one name are a programming
// error.
func Register(name string, newSelector func() Selector) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := policies[name]; dup {
		panic("balance: policy " + name + " registered twice")
	}
	policies[name] = newSelector
}

// New builds the Selector of the named policy; an empty name is Default.
func New(name string) (Selector, error) {
	if name == "" {
		name = Default
	}
	mu.RLock()
	f, ok := policies[name]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("want %s, not %q", strings.Join(Names(), " or "), name)
	}
	return f(), nil
}

// Check reports whether name (empty for Default) is a registered policy,
// with the error New would return.
func Check(name string) error {
	_, err := New(name)
	return err
}

// Names lists the registered policies, the default first and the others
// sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(policies))
	for n := range policies {
		if n != Default {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	if _, ok := policies[Default]; ok {
		out = append([]string{Default}, out...)
	}
	return out
}

func init() {
	Register("round_robin", func() Selector { return new(RoundRobin) })
	Register("least_requests", func() Selector { return LeastRequests{} })
}

// RoundRobin takes the instances in turn, skipping the unusable ones.
type RoundRobin struct{ next atomic.Uint64 }

// Select implements Selector.
func (r *RoundRobin) Select(list Instances, skip int, now int64) int {
	n := list.Len()
	start := r.next.Add(1)
	for i := 0; i < n; i++ {
		k := int((start + uint64(i)) % uint64(n))
		if k != skip && list.Usable(k, now) {
			return k
		}
	}
	return -1
}

// LeastRequests is the power of two choices: of two distinct random
// instances, the one with fewer requests in flight wins. It holds no
// state.
type LeastRequests struct{}

// Select implements Selector.
func (LeastRequests) Select(list Instances, skip int, now int64) int {
	n := list.Len()
	switch n {
	case 0:
		return -1
	case 1:
		if skip != 0 && list.Usable(0, now) {
			return 0
		}
		return -1
	}
	i := rand.IntN(n)
	j := rand.IntN(n - 1)
	if j >= i {
		j++
	}
	okI := i != skip && list.Usable(i, now)
	okJ := j != skip && list.Usable(j, now)
	switch {
	case okI && okJ:
		if list.InFlight(j) < list.InFlight(i) {
			return j
		}
		return i
	case okI:
		return i
	case okJ:
		return j
	}
	for k := 0; k < n; k++ {
		if x := (i + k) % n; x != skip && list.Usable(x, now) {
			return x
		}
	}
	return -1
}
