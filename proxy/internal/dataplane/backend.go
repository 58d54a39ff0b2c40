package dataplane

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	"github.com/valyala/fasthttp"

	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/balance"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// backend is a named upstream at run time: its instances, balancer,
// circuit breaker, retry budget and health checker. A backend outlives
// table changes that leave its spec alone, so that its connection pools,
// breaker state and health survive a flip.
type backend struct {
	name      string
	spec      *routes.BackendSpec
	instances atomic.Pointer[instanceList]
	selector  balance.Selector
	// panicNext rotates the picks among unusable instances when none is
	// usable.
	panicNext atomic.Uint64
	breaker   *gobreaker.CircuitBreaker[struct{}]
	budget    *retryBudget
	log       *slog.Logger
	m         *metrics
	watch     *watchdog
	dialer    Dialer

	stopHealth context.CancelFunc // guarded by mu
	mu         sync.Mutex         // guards instance list changes
}

// instance is one upstream address with its connection pools: one per
// route timeout, since the transport arms each pool's connections with its
// timeout (most backends see one or two).
type instance struct {
	url       *url.URL
	key       string // scheme://host:port
	addr      string // host:port
	tls       bool
	tlsConfig *tls.Config
	hostHdr   []byte
	b         *backend
	clients   atomic.Pointer[[]timedClient]
	mu        sync.Mutex
	inflight  atomic.Int64

	healthy      atomic.Bool // active health checks; true until proven otherwise
	probed       atomic.Bool // an active health check passed at least once
	hcStreak     atomic.Int32
	consecFails  atomic.Int32
	ejectedUntil atomic.Int64 // unix nanos
	ejections    atomic.Int32
}

// instanceList is a backend's instances as its Selector sees them.
type instanceList []*instance

// Len implements balance.Instances.
func (l *instanceList) Len() int { return len(*l) }

// Usable implements balance.Instances.
func (l *instanceList) Usable(i int, now int64) bool { return (*l)[i].available(now) }

// InFlight implements balance.Instances.
func (l *instanceList) InFlight(i int) int64 { return (*l)[i].inflight.Load() }

// dialError marks a failure to connect: the request was not sent, so any
// method may go elsewhere.
type dialError struct{ err error }

func (e *dialError) Error() string { return "connect: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// errNoInstance is returned when a backend has no instance at all, such as a
// service nobody registered.
var errNoInstance = errors.New("no instance available")

// backendEnv is what a backend takes from the proxy that runs it.
type backendEnv struct {
	// retryBudgetRatio is the proxy's default retry budget ratio.
	retryBudgetRatio float64
	log              *slog.Logger
	m                *metrics
	watch            *watchdog
	dial             Dialer
}

func newBackend(spec *routes.BackendSpec, env backendEnv) *backend {
	budgetRatio, log, m := env.retryBudgetRatio, env.log, env.m
	sel, err := balance.New(spec.Balance)
	if err != nil {
		// routes.Compile checks the name against the same registry, so
		// only a spec built by hand gets here.
		log.Error("unknown balance policy; using the default", "backend", spec.Name, "error", err)
		sel, _ = balance.New(balance.Default)
	}
	b := &backend{name: spec.Name, spec: spec, log: log, m: m, watch: env.watch, dialer: env.dial, selector: sel}
	ratio := spec.RetryBudget.Ratio
	if budgetRatio > 0 && ratio == 0 {
		ratio = budgetRatio
	}
	b.budget = newRetryBudget(ratio, spec.RetryBudget.MinPerSecond)
	if !spec.Breaker.Disabled {
		bs := spec.Breaker
		b.breaker = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
			Name:        spec.Name,
			MaxRequests: uint32(bs.HalfOpenRequests),
			Interval:    bs.Interval.D(),
			Timeout:     bs.OpenFor.D(),
			// A client's fault says nothing of the backend.
			IsExcluded: isClientError,
			ReadyToTrip: func(c gobreaker.Counts) bool {
				if int(c.ConsecutiveFailures) >= bs.ConsecutiveFailures {
					return true
				}
				// Excluded requests count neither way, nor in the ratio.
				n := int(c.Requests) - int(c.TotalExclusions)
				return n > 0 && n >= bs.MinRequests && float64(c.TotalFailures)/float64(n) >= bs.FailureRatio
			},
			OnStateChange: func(name string, from, to gobreaker.State) {
				log.Warn("circuit breaker changed state", "backend", name, "from", from.String(), "to", to.String())
				m.breakerState.WithLabelValues(name).Set(float64(to))
			},
		})
		m.breakerState.WithLabelValues(spec.Name).Set(0)
	}
	empty := instanceList{}
	b.instances.Store(&empty)
	if len(spec.URLs) > 0 {
		urls := make([]string, len(spec.URLs))
		for i, u := range spec.URLs {
			urls[i] = u.String()
		}
		b.setInstances(urls)
	}
	return b
}

// setInstances replaces the instance list, keeping the instances (and
// their pools and health) whose URL stays.
func (b *backend) setInstances(urls []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := map[string]*instance{}
	for _, in := range *b.instances.Load() {
		old[in.key] = in
	}
	next := make(instanceList, 0, len(urls))
	for _, raw := range urls {
		u, err := routes.ParseBackendURL(raw)
		if err != nil {
			b.log.Warn("ignoring invalid instance URL", "backend", b.name, "url", raw, "error", err)
			continue
		}
		key := u.Scheme + "://" + hostPort(u)
		if in, ok := old[key]; ok {
			next = append(next, in)
			delete(old, key)
			continue
		}
		next = append(next, b.newInstance(u, key))
	}
	b.instances.Store(&next)
	for _, in := range old {
		in.closeIdle()
	}
	b.publishInstances()
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

func (b *backend) newInstance(u *url.URL, key string) *instance {
	in := &instance{url: u, key: key, addr: hostPort(u), tls: u.Scheme == "https", hostHdr: []byte(u.Host), b: b,
		tlsConfig: &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}}
	in.healthy.Store(true)
	empty := []timedClient{}
	in.clients.Store(&empty)
	return in
}

// timedClient is a connection pool whose exchanges have one timeout.
type timedClient struct {
	timeout time.Duration
	hc      *fasthttp.HostClient
}

// responseBufferMax is the largest answer of known length read whole;
// longer ones stream.
const responseBufferMax = 64 << 10

// client returns the instance's pool for a timeout, creating it on first
// use.
func (in *instance) client(timeout time.Duration) *fasthttp.HostClient {
	for _, c := range *in.clients.Load() {
		if c.timeout == timeout {
			return c.hc
		}
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	list := *in.clients.Load()
	for _, c := range list {
		if c.timeout == timeout {
			return c.hc
		}
	}
	hc := in.newClient(timeout)
	next := append(append([]timedClient(nil), list...), timedClient{timeout, hc})
	in.clients.Store(&next)
	return hc
}

func (in *instance) newClient(timeout time.Duration) *fasthttp.HostClient {
	b := in.b
	return &fasthttp.HostClient{
		Addr:                      in.addr,
		NoDefaultUserAgentHeader:  true,
		IsTLS:                     in.tls,
		TLSConfig:                 in.tlsConfig,
		MaxConns:                  b.spec.MaxConns,
		MaxIdleConnDuration:       30 * time.Second,
		MaxIdemponentCallAttempts: 2,
		DisablePathNormalizing:    true,
		ReadBufferSize:            16 << 10,
		WriteBufferSize:           16 << 10,
		Transport:                 &transport{timeout: timeout, bufferMax: responseBufferMax},
		RetryIfErr: func(req *fasthttp.Request, attempts int, err error) (bool, bool) {
			// One transparent retry of an idempotent request whose body can be
			// sent again, for a pooled connection the server closed.
			return false, attempts < 2 && !req.IsBodyStream() && routes.IsIdempotent(req.Header.Method()) && !isDialError(err) && !isTimeout(err)
		},
		DialTimeout: func(_ string, t time.Duration) (net.Conn, error) { return in.dial(t) },
	}
}

// dial connects to the instance as every backend connection is made:
// through the proxy's Dialer, within the backend's connect timeout (or t, if
// shorter), without Nagle's delay, and watched by the watchdog. A failure
// is a *dialError.
func (in *instance) dial(t time.Duration) (net.Conn, error) {
	if connect := in.b.spec.ConnectTimeout; t <= 0 || t > connect {
		t = connect
	}
	c, err := in.b.dialer(in.addr, t)
	if err != nil {
		return nil, &dialError{err}
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	return in.b.watch.wrap(c, true), nil
}

// closeIdle closes the idle connections of every pool of every instance:
// a backend seen unreachable no longer has a process at their other end.
func (b *backend) closeIdle() {
	for _, in := range *b.instances.Load() {
		in.closeIdle()
	}
}

// closeIdle closes the idle connections of every pool.
func (in *instance) closeIdle() {
	for _, c := range *in.clients.Load() {
		c.hc.CloseIdleConnections()
	}
}

// Dialer opens a connection to a backend instance at addr (host:port)
// within timeout. TLS, if the instance wants it, goes over the
// connection it returns.
type Dialer func(addr string, timeout time.Duration) (net.Conn, error)

// dialTCP is the default Dialer.
func dialTCP(addr string, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", addr, timeout)
}

func isDialError(err error) bool {
	var d *dialError
	return errors.As(err, &d)
}

// available reports whether the balancer may pick the instance.
func (in *instance) available(now int64) bool {
	return in.healthy.Load() && in.ejectedUntil.Load() <= now
}

// pick chooses an instance with the backend's Selector, avoiding skip
// (the one that just failed) when another is available. When no instance
// is available, it picks among all of them rather than fail every request
// ("panic routing"), since health checks can be wrong too.
func (b *backend) pick(skip *instance) (*instance, error) {
	lp := b.instances.Load()
	list := *lp
	n := len(list)
	switch n {
	case 0:
		return nil, errNoInstance
	case 1:
		return list[0], nil
	}
	skipAt := -1
	if skip != nil {
		for i, in := range list {
			if in == skip {
				skipAt = i
				break
			}
		}
	}
	if i := b.selector.Select(lp, skipAt, time.Now().UnixNano()); i >= 0 {
		return list[i], nil
	}
	for i := 0; i < n; i++ {
		in := list[b.panicNext.Add(1)%uint64(n)]
		if in != skip {
			return in, nil
		}
	}
	return list[0], nil
}

// record feeds an attempt's outcome to passive outlier ejection.
func (b *backend) record(in *instance, failed bool) {
	if !failed {
		if in.consecFails.Load() != 0 {
			in.consecFails.Store(0)
		}
		if in.ejections.Load() != 0 && in.ejectedUntil.Load() < time.Now().UnixNano() {
			in.ejections.Store(0)
		}
		return
	}
	o := b.spec.Outlier
	if o.ConsecutiveFailures <= 0 {
		return
	}
	if int(in.consecFails.Add(1)) < o.ConsecutiveFailures {
		return
	}
	in.consecFails.Store(0)
	list := *b.instances.Load()
	now := time.Now().UnixNano()
	ejected := 0
	for _, x := range list {
		if x.ejectedUntil.Load() > now {
			ejected++
		}
	}
	if len(list) == 0 || (ejected+1)*100 > o.MaxEjectedPercent*len(list) {
		return
	}
	k := min(in.ejections.Add(1)-1, 10)
	d := o.Ejection.D() << k
	in.ejectedUntil.Store(now + int64(d))
	b.log.Warn("instance ejected", "backend", b.name, "instance", in.key, "for", d.String())
	b.m.ejections.WithLabelValues(b.name).Inc()
	b.publishInstances()
}

// publishInstances updates the instance-state gauge.
func (b *backend) publishInstances() {
	var healthy, unhealthy, ejected float64
	now := time.Now().UnixNano()
	for _, in := range *b.instances.Load() {
		switch {
		case in.ejectedUntil.Load() > now:
			ejected++
		case !in.healthy.Load():
			unhealthy++
		default:
			healthy++
		}
	}
	b.m.instances.WithLabelValues(b.name, "healthy").Set(healthy)
	b.m.instances.WithLabelValues(b.name, "unhealthy").Set(unhealthy)
	b.m.instances.WithLabelValues(b.name, "ejected").Set(ejected)
}

// startHealth runs the active health checker until ctx ends or stop; wg
// counts it, so that Run can wait for it. A backend's checker starts once.
func (b *backend) startHealth(ctx context.Context, wg *sync.WaitGroup) {
	hc := b.spec.HealthCheck
	if hc == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopHealth != nil {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	b.stopHealth = cancel
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(hc.Interval.D())
		defer t.Stop()
		for {
			b.probeAll(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// stop ends the health checker and closes idle pooled connections; requests
// still using the backend finish normally.
func (b *backend) stop() {
	b.mu.Lock()
	if b.stopHealth != nil {
		b.stopHealth()
	}
	b.mu.Unlock()
	b.closeIdle()
}

func (b *backend) probeAll(ctx context.Context) {
	hc := b.spec.HealthCheck
	var wg sync.WaitGroup
	for _, in := range *b.instances.Load() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok := probe(in, hc.Path, hc.Timeout.D())
			if ctx.Err() != nil {
				return
			}
			b.healthResult(in, ok, hc)
		}()
	}
	wg.Wait()
}

func (b *backend) healthResult(in *instance, ok bool, hc *routes.HealthCheck) {
	if ok {
		in.probed.Store(true)
	}
	was := in.healthy.Load()
	if ok == was {
		in.hcStreak.Store(0)
		return
	}
	need := hc.UnhealthyAfter
	if ok {
		need = hc.HealthyAfter
	}
	if int(in.hcStreak.Add(1)) < need {
		return
	}
	in.hcStreak.Store(0)
	in.healthy.Store(ok)
	if ok {
		b.log.Info("instance healthy again", "backend", b.name, "instance", in.key)
	} else {
		// A process that went away (killed, restarted) left the pool's
		// connections dead: a request sent over one when the instance is
		// back fails, and a write is not retried. They go with it.
		in.closeIdle()
		b.log.Warn("instance failed its health checks", "backend", b.name, "instance", in.key)
	}
	b.publishInstances()
}

func probe(in *instance, path string, timeout time.Duration) bool {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(in.url.Scheme + "://" + in.url.Host + path)
	req.Header.SetMethod("GET")
	req.Header.Set("User-Agent", "strangler-health-check")
	req.SetConnectionClose()
	if err := in.client(timeout).Do(req, resp); err != nil {
		return false
	}
	code := resp.StatusCode()
	return code >= 200 && code < 400
}

// retryBudget allows retries up to a ratio of requests, plus a floor per
// second, as Finagle's RetryBudget does. Deposits are lock-free; only
// withdrawals, which are rare, take the lock.
type retryBudget struct {
	ratioMilli int64 // tokens per request, in thousandths
	cap        int64
	tokens     atomic.Int64 // thousandths
	minPerSec  int64

	mu        sync.Mutex
	floorSec  int64
	floorUsed int64
}

func newRetryBudget(ratio float64, minPerSecond int) *retryBudget {
	if ratio <= 0 {
		ratio = 0.2
	}
	return &retryBudget{ratioMilli: int64(ratio * 1000), cap: 100 * 1000, minPerSec: int64(minPerSecond)}
}

// deposit records one request.
func (r *retryBudget) deposit() {
	if r.tokens.Load() >= r.cap {
		return
	}
	r.tokens.Add(r.ratioMilli)
}

// withdraw takes one retry from the budget and reports whether it may go.
func (r *retryBudget) withdraw() bool {
	for {
		t := r.tokens.Load()
		if t < 1000 {
			break
		}
		if r.tokens.CompareAndSwap(t, t-1000) {
			return true
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	sec := time.Now().Unix()
	if sec != r.floorSec {
		r.floorSec, r.floorUsed = sec, 0
	}
	if r.floorUsed < r.minPerSec {
		r.floorUsed++
		return true
	}
	return false
}

// describeInstances renders the instances for the admin API.
func (b *backend) describeInstances() []api.InstanceStatus {
	now := time.Now().UnixNano()
	var out []api.InstanceStatus
	for _, in := range *b.instances.Load() {
		st := api.InstanceStatus{URL: in.key, Healthy: in.healthy.Load(), InFlight: in.inflight.Load()}
		if u := in.ejectedUntil.Load(); u > now {
			st.EjectedUntil = time.Unix(0, u).UTC().Format(time.RFC3339)
		}
		out = append(out, st)
	}
	return out
}

// health counts the instances for a replica's report. An instance counts
// as healthy when the balancer may pick it and, if the backend has an
// active health check, a probe has passed: an instance is taken to be
// healthy until its checks fail, but a phase should not send traffic to a
// service on that assumption alone.
func (b *backend) health() api.BackendHealth {
	now := time.Now().UnixNano()
	list := *b.instances.Load()
	h := api.BackendHealth{Name: b.name, Service: b.spec.Service, Instances: len(list)}
	for _, in := range list {
		if in.available(now) && (b.spec.HealthCheck == nil || in.probed.Load()) {
			h.Healthy++
		}
	}
	return h
}

func (b *backend) breakerState() string {
	if b.breaker == nil {
		return "disabled"
	}
	return b.breaker.State().String()
}

func (b *backend) String() string { return fmt.Sprintf("backend %s", b.name) }
