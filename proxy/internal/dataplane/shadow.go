package dataplane

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
	"github.com/valyala/fasthttp"

	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/jsondiff"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// HeaderShadow marks the copies sent to a candidate in shadow mode:
// "copy" for safe methods and "dry-run" for writes, which a candidate must
// not commit.
const HeaderShadow = "X-Strangler-Shadow"

// shadower sends shadow copies with a fixed pool of workers, compares the
// answers and keeps the results per route. Copies wait in one bounded FIFO
// lane per candidate, and the workers take the lanes in turn, so that a
// candidate that hangs fills only its share of the queue
// (ShadowConfig.CandidateQueue) and holds only its share of the workers
// (CandidateWorkers) while the others go on. Within a lane, the write
// copies of one key (the sticky key, else the client) go one at a time and
// in order. The data plane only ever queues without waiting: a full lane
// or queue drops the copy.
type shadower struct {
	p    *Plane
	cfg  ShadowConfig
	pool sync.Pool
	red  *sampleRedactor

	mu     sync.Mutex
	routes map[string]*shadowRoute

	// qmu guards the lanes, the rechecks waiting and closed; ready wakes
	// the workers when a copy may be taken or the shadower closes.
	qmu      sync.Mutex
	ready    *sync.Cond
	lanes    map[*backend]*shadowLane
	turn     []*shadowLane // the lanes with copies waiting, in turn
	next     int           // the index in turn whose turn is next
	queued   atomic.Int64  // copies waiting in all lanes
	rechecks map[*shadowJob]*time.Timer
	closed   bool
	// timers counts the recheck timers armed and not yet done, so that
	// none runs after run returns.
	timers sync.WaitGroup

	// pause holds the workers, for tests that fill the queue.
	pause sync.RWMutex

	// The per-second cap: the current second and the copies taken in it.
	second atomic.Int64
	taken  atomic.Int64
}

// shadowLane is the copies waiting for one candidate.
type shadowLane struct {
	be       *backend
	jobs     []*shadowJob
	inflight int
	// busy holds the write keys with a copy in flight.
	busy map[uint64]bool
}

// The results a comparison counts under, in the order of shadowResults.
const (
	resMatch = iota
	resMismatch
	resNoise
	resSettled
	resInconclusive
	resError
	resCount
)

// shadowResults are the result labels of strangler_proxy_shadow_comparisons_total.
var shadowResults = [resCount]string{"match", "mismatch", "noise", "settled", "inconclusive", "error"}

// The reasons a copy is not sent, in the order of shadowDropReasons.
const (
	dropQueueFull = iota
	dropCandidateFull
	dropBreakerOpen
	dropBodyTooLarge
	dropNotReplayable
	dropRateLimited
	dropShutdown
	dropCount
)

// shadowDropReasons are the reason labels of strangler_proxy_shadow_dropped_total.
var shadowDropReasons = [dropCount]string{"queue_full", "candidate_queue_full", "breaker_open", "body_too_large", "not_replayable", "rate_limited", "shutdown"}

// errShadowBreakerOpen is a copy not sent because the candidate's breaker
// is open: a drop, not an error of the candidate.
var errShadowBreakerOpen = errors.New("shadow: candidate's circuit breaker open")

// shadowRoute is one route's comparison results; it survives table changes
// that keep the route and its module.
type shadowRoute struct {
	id, module string

	counts  [resCount]atomic.Int64
	dropped atomic.Int64
	results [resCount]prometheus.Counter
	drops   [dropCount]prometheus.Counter

	mu      sync.Mutex
	learned map[string]bool
	samples []api.Sample // ring
	next    int
}

// shadowJob is one copy: the request, legacy's answer, and buffers for the
// candidate's.
type shadowJob struct {
	s      *shadower
	rt     *routeRT
	sr     *shadowRoute
	req    fasthttp.Request
	legacy fasthttp.Response // legacy's answer, streamed to the client through tee
	other  fasthttp.Response // the candidate's and the second legacy answer
	reqID  string
	host   []byte
	uri    string
	method string
	// key orders write copies: copies with the same non-zero key go to
	// the candidate one at a time, in the order they were queued.
	key uint64

	legacyStatus  int
	legacyHeaders []string
	legacyBody    []byte
	over          bool
	tee           teeBody
	// recheck marks a job queued again after a mismatch, to ask both
	// sides once more; candStatus and diffs are that mismatch, counted as
	// it is when the recheck cannot happen.
	recheck    bool
	candStatus int
	diffs      []jsondiff.Difference
}

func newShadower(p *Plane, cfg ShadowConfig) *shadower {
	if cfg.CandidateQueue == 0 {
		cfg.CandidateQueue = max(1, cfg.Queue/4)
	}
	if cfg.CandidateWorkers == 0 {
		cfg.CandidateWorkers = max(1, cfg.Workers/2)
	}
	s := &shadower{p: p, cfg: cfg, red: newSampleRedactor(cfg.Redact), routes: map[string]*shadowRoute{}, lanes: map[*backend]*shadowLane{}, rechecks: map[*shadowJob]*time.Timer{}}
	s.ready = sync.NewCond(&s.qmu)
	s.pool.New = func() any { return &shadowJob{s: s} }
	return s
}

// run works the lanes until ctx ends. Then the copies still waiting are
// dropped, the rechecks still waiting count as the mismatches they are,
// and run returns when no worker and no recheck timer is left.
func (s *shadower) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range s.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.worker()
		}()
	}
	<-ctx.Done()
	s.close()
	wg.Wait()
	s.timers.Wait()
}

// worker sends the copies it takes until the shadower closes.
func (s *shadower) worker() {
	for {
		job, lane := s.take()
		if job == nil {
			return
		}
		s.pause.RLock()
		kept := s.work(job)
		s.pause.RUnlock()
		s.done(lane, job)
		if kept {
			s.later(job)
		} else {
			job.release()
		}
	}
}

// take waits for a copy that may go: the first of a lane in turn whose
// candidate has a worker to spare and whose key has no copy in flight. It
// returns nil once the shadower closes.
func (s *shadower) take() (*shadowJob, *shadowLane) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	for !s.closed {
		for i := range len(s.turn) {
			k := (s.next + i) % len(s.turn)
			l := s.turn[k]
			if l.inflight >= s.cfg.CandidateWorkers {
				continue
			}
			for j, job := range l.jobs {
				if job.key != 0 && l.busy[job.key] {
					continue
				}
				l.jobs = slices.Delete(l.jobs, j, j+1)
				l.inflight++
				if job.key != 0 {
					l.busy[job.key] = true
				}
				s.queued.Add(-1)
				s.next = k + 1
				if len(l.jobs) == 0 {
					s.turn = slices.Delete(s.turn, k, k+1)
					s.next = k
				}
				if s.next >= len(s.turn) {
					s.next = 0
				}
				return job, l
			}
		}
		s.ready.Wait()
	}
	return nil, nil
}

// done gives back a worker's hold on its lane and on the job's key.
func (s *shadower) done(l *shadowLane, job *shadowJob) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	l.inflight--
	delete(l.busy, job.key)
	if l.inflight == 0 && len(l.jobs) == 0 && s.lanes[l.be] == l {
		delete(s.lanes, l.be)
	}
	if len(l.jobs) > 0 {
		s.ready.Broadcast()
	}
}

// enqueue puts a job at the end of its candidate's lane, or returns the
// reason it cannot. It runs under qmu.
func (s *shadower) enqueue(job *shadowJob) (drop int, ok bool) {
	switch {
	case s.closed:
		return dropShutdown, false
	case s.queued.Load() >= int64(s.cfg.Queue):
		return dropQueueFull, false
	}
	be := job.rt.candidate
	l := s.lanes[be]
	if l == nil {
		l = &shadowLane{be: be, busy: map[uint64]bool{}}
		s.lanes[be] = l
	}
	if len(l.jobs) >= s.cfg.CandidateQueue {
		return dropCandidateFull, false
	}
	if len(l.jobs) == 0 {
		s.turn = append(s.turn, l)
	}
	l.jobs = append(l.jobs, job)
	s.queued.Add(1)
	s.ready.Signal()
	return 0, true
}

// later arms a job's recheck, or counts its mismatch as it is when the
// shadower has closed.
func (s *shadower) later(job *shadowJob) {
	s.qmu.Lock()
	if s.closed {
		s.qmu.Unlock()
		s.final(job)
		return
	}
	s.timers.Add(1)
	s.rechecks[job] = time.AfterFunc(s.cfg.Recheck, func() {
		defer s.timers.Done()
		s.qmu.Lock()
		delete(s.rechecks, job)
		_, ok := s.enqueue(job)
		s.qmu.Unlock()
		if !ok {
			s.final(job)
		}
	})
	s.qmu.Unlock()
}

// final counts a recheck that cannot happen as the mismatch it found.
func (s *shadower) final(job *shadowJob) {
	s.mismatch(job, job.candStatus, job.diffs)
	job.release()
}

// close stops the workers, drops the copies still waiting and counts the
// rechecks still waiting as mismatches.
func (s *shadower) close() {
	s.qmu.Lock()
	s.closed = true
	var pending []*shadowJob
	for job, tm := range s.rechecks {
		if tm.Stop() {
			s.timers.Done()
			pending = append(pending, job)
		}
		delete(s.rechecks, job)
	}
	var waiting []*shadowJob
	for _, l := range s.turn {
		waiting = append(waiting, l.jobs...)
		l.jobs = nil
	}
	s.turn = nil
	s.queued.Store(0)
	s.ready.Broadcast()
	s.qmu.Unlock()
	for _, job := range waiting {
		if job.recheck {
			pending = append(pending, job)
			continue
		}
		job.sr.drop(dropShutdown)
		job.release()
	}
	for _, job := range pending {
		s.final(job)
	}
}

func (s *shadower) route(r *routes.Route) *shadowRoute {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.routes[r.ID]
	if ok && old.module == r.Module {
		return old
	}
	if ok {
		old.unregister(s.p.m)
	}
	m := s.p.m
	sr := &shadowRoute{id: r.ID, module: r.Module, learned: map[string]bool{}}
	for i, res := range shadowResults {
		sr.results[i] = m.shadow.WithLabelValues(r.ID, r.Module, res)
	}
	for i, reason := range shadowDropReasons {
		sr.drops[i] = m.shadowDrop.WithLabelValues(r.ID, r.Module, reason)
	}
	s.routes[r.ID] = sr
	return sr
}

// unregister deletes the route's metric series.
func (sr *shadowRoute) unregister(m *metrics) {
	for _, res := range shadowResults {
		m.shadow.DeleteLabelValues(sr.id, sr.module, res)
	}
	for _, reason := range shadowDropReasons {
		m.shadowDrop.DeleteLabelValues(sr.id, sr.module, reason)
	}
}

// prepare decides whether this request gets a shadow copy and, if so,
// returns the job that will carry it. It runs on the data plane, so it
// drops early and cheaply.
func (s *shadower) prepare(st *reqState) *shadowJob {
	rt := st.rt
	if rt.candidate == nil {
		return nil
	}
	sr := rt.shadow
	method := st.ctx.Request.Header.Method()
	if !routes.IsSafe(method) && !rt.Shadow.Writes {
		return nil
	}
	if rt.Shadow.SamplePercent < 100 && rand.IntN(100) >= rt.Shadow.SamplePercent {
		return nil
	}
	switch {
	case !st.replay:
		sr.drop(dropNotReplayable)
		return nil
	case len(st.ctx.Request.Body()) > s.cfg.MaxBodyBytes:
		sr.drop(dropBodyTooLarge)
		return nil
	case s.queued.Load() >= int64(s.cfg.Queue):
		sr.drop(dropQueueFull)
		return nil
	case rt.candidate.breaker != nil && rt.candidate.breaker.State() == gobreaker.StateOpen:
		sr.drop(dropBreakerOpen)
		return nil
	case !s.allow():
		sr.drop(dropRateLimited)
		return nil
	}
	job := s.pool.Get().(*shadowJob)
	job.rt, job.sr = rt, sr
	return job
}

// allow takes one copy from the per-second cap.
func (s *shadower) allow() bool {
	if s.cfg.MaxPerSecond < 0 {
		return true
	}
	sec := coarseNow() / 1e9
	if cur := s.second.Load(); cur != sec && s.second.CompareAndSwap(cur, sec) {
		s.taken.Store(0)
	}
	return s.taken.Add(1) <= int64(s.cfg.MaxPerSecond)
}

// respFor is where tryBackend writes the answer: the job's response when
// shadowing, so that its body can be teed, else the client's.
func (st *reqState) respFor() *fasthttp.Response {
	if st.shadow != nil {
		return &st.shadow.legacy
	}
	return &st.ctx.Response
}

// cancel gives the job back unused.
func (j *shadowJob) cancel() {
	if j == nil {
		return
	}
	_ = j.legacy.CloseBodyStream()
	j.release()
}

func (j *shadowJob) release() {
	j.req.Reset()
	j.legacy.Reset()
	j.other.Reset()
	j.rt, j.sr = nil, nil
	j.legacyHeaders = j.legacyHeaders[:0]
	j.legacyBody = j.legacyBody[:0]
	if cap(j.legacyBody) > 1<<20 {
		j.legacyBody = nil
	}
	j.over = false
	j.recheck = false
	j.key, j.candStatus, j.diffs = 0, 0, nil
	j.tee = teeBody{}
	j.s.pool.Put(j)
}

// attach copies the request and legacy's answer into the job, hands the
// answer to the client through a tee that keeps a copy of the body, and
// queues the job when the body has been sent.
func (s *shadower) attach(st *reqState) {
	job := st.shadow
	ctx := st.ctx
	rt := job.rt
	if !routes.IsSafe(ctx.Request.Header.Method()) {
		// Zero means unordered; the bucket's 10,000 values put two keys in
		// one order now and then, which only costs them some concurrency.
		job.key = uint64(bucket(rt.salt, rt.stickyKey(st))) + 1
	}
	ctx.Request.Header.CopyTo(&job.req.Header)
	job.req.SetBody(ctx.Request.Body())
	b := append(st.scratch[:0], st.forwarded()...)
	if q := ctx.URI().QueryString(); len(q) > 0 {
		b = append(b, '?')
		b = append(b, q...)
	}
	job.req.Header.SetRequestURIBytes(b)
	job.uri = string(b)
	job.req.URI().DisablePathNormalizing = true
	job.req.UseHostHeader = true
	job.method = string(ctx.Request.Header.Method())
	job.reqID = string(st.reqID)
	job.host = append(job.host[:0], st.host...)
	mode := "copy"
	if !routes.IsSafe(ctx.Request.Header.Method()) {
		mode = "dry-run"
	}
	job.req.Header.Set(HeaderShadow, mode)

	job.legacyStatus = job.legacy.StatusCode()
	for _, h := range rt.Shadow.CompareHeaders {
		job.legacyHeaders = append(job.legacyHeaders, string(job.legacy.Header.Peek(h)))
	}
	// Hand legacy's answer to the client.
	job.legacy.Header.CopyTo(&ctx.Response.Header)
	if body := job.legacy.BodyStream(); body != nil {
		job.tee = teeBody{job: job, r: body, limit: s.cfg.MaxBodyBytes, size: job.legacy.Header.ContentLength()}
		ctx.Response.SetBodyStream(&job.tee, job.legacy.Header.ContentLength())
	} else {
		ctx.Response.SetBody(job.legacy.Body())
		job.legacyBody = append(job.legacyBody[:0], job.legacy.Body()...)
		s.submit(job, true)
	}
	st.shadow = nil
}

// submit queues a finished job, or drops it when the queue or the
// candidate's lane is full or the exchange was incomplete or too large.
func (s *shadower) submit(job *shadowJob, complete bool) {
	if !complete {
		job.release()
		return
	}
	if job.over {
		job.sr.drop(dropBodyTooLarge)
		job.release()
		return
	}
	s.qmu.Lock()
	reason, ok := s.enqueue(job)
	s.qmu.Unlock()
	if !ok {
		job.sr.drop(reason)
		job.release()
	}
}

// teeBody streams legacy's body to the client and keeps a copy, up to the
// cap, for the comparison.
type teeBody struct {
	job   *shadowJob
	r     io.Reader
	limit int
	size  int // the Content-Length, or -1
	n     int
	eof   bool
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.n += n
	if err == io.EOF {
		t.eof = true
	}
	if n > 0 && !t.job.over {
		if len(t.job.legacyBody)+n > t.limit {
			t.job.over = true
		} else {
			t.job.legacyBody = append(t.job.legacyBody, p[:n]...)
		}
	}
	return n, err
}

// CloseWithError is called by the server once the body is written or has
// failed; it releases legacy's connection and queues the job.
func (t *teeBody) CloseWithError(err error) error {
	var cerr error
	if c, ok := t.r.(fasthttp.ReadCloserWithError); ok {
		cerr = c.CloseWithError(err)
	} else if c, ok := t.r.(io.Closer); ok {
		cerr = c.Close()
	}
	// Compare only what legacy sent whole.
	complete := err == nil && (t.eof || t.size >= 0 && t.n == t.size)
	t.job.s.submit(t.job, complete)
	return cerr
}

// work sends one copy to the candidate and compares the answers. It
// returns true when it kept the job for a recheck.
func (s *shadower) work(job *shadowJob) bool {
	if job.recheck {
		s.recheckJob(job)
		return false
	}
	sr, rt := job.sr, job.rt
	cand, err := s.send(job, rt.candidate)
	if err != nil {
		sr.lost(err)
		s.p.log.Debug("shadow copy failed", "route", rt.ID, "request_id", job.reqID, "error", err)
		return false
	}
	legacy := job.legacyAnswer()
	noise := sr.noiseSet()
	diffs := compareAnswers(legacy, cand, rt.Shadow, noise, s.red)
	if len(diffs) == 0 {
		sr.count(resMatch)
		return false
	}
	// Diffy's noise cancelling: ask legacy again; whatever differs between
	// its two answers is noise, for this request and, learned, for the
	// route. Only for safe methods: a write is never sent twice.
	safe := routes.IsSafe([]byte(job.method))
	if safe {
		if second, err := s.send(job, rt.legacy); err == nil {
			learned := noiseLocations(legacy, second, rt.Shadow)
			if len(learned) > 0 {
				sr.mu.Lock()
				for _, l := range learned {
					sr.learned[l] = true
					noise[l] = true
				}
				sr.mu.Unlock()
				diffs = compareAnswers(legacy, cand, rt.Shadow, noise, s.red)
			}
		}
	}
	if len(diffs) == 0 {
		sr.count(resNoise)
		return false
	}
	if safe && s.cfg.Recheck > 0 && s.allow() {
		// A lagging candidate: ask both again a little later.
		job.recheck, job.candStatus, job.diffs = true, cand.status, diffs
		return true
	}
	s.mismatch(job, cand.status, diffs)
	return false
}

// recheckJob asks legacy and the candidate again after a mismatch. The
// mismatch settles, as the candidate lagging, only when legacy's fresh
// answer is its first one and the candidate's fresh answer agrees with it.
// When legacy's own answer changed meanwhile (the resource was deleted,
// and both now say 404), the recheck proves nothing: inconclusive.
func (s *shadower) recheckJob(job *shadowJob) {
	sr, rt := job.sr, job.rt
	legacy, err := s.send(job, rt.legacy)
	if err != nil {
		sr.lost(err)
		return
	}
	cand, err := s.send(job, rt.candidate)
	if err != nil {
		sr.lost(err)
		return
	}
	noise := sr.noiseSet()
	if len(compareAnswers(job.legacyAnswer(), legacy, rt.Shadow, noise, nil)) > 0 {
		sr.count(resInconclusive)
		return
	}
	diffs := compareAnswers(legacy, cand, rt.Shadow, noise, s.red)
	if len(diffs) == 0 {
		sr.count(resSettled)
		return
	}
	s.mismatch(job, cand.status, diffs)
}

// legacyAnswer is legacy's first answer, the one the client got.
func (j *shadowJob) legacyAnswer() answer {
	return answer{status: j.legacyStatus, headers: j.legacyHeaders, body: j.legacyBody}
}

// mismatch records a comparison that differed, with a sample.
func (s *shadower) mismatch(job *shadowJob, candStatus int, diffs []jsondiff.Difference) {
	sr := job.sr
	// The sample first, so that a reader who sees the count sees it too;
	// redacted before it is stored, so that no secret is ever served.
	smp := api.Sample{
		Time: time.Now().UTC(), RequestID: job.reqID, Method: job.method, URI: job.uri,
		LegacyStatus: job.legacyStatus, CandidateStatus: candStatus, Differences: diffs,
	}
	s.red.sample(&smp)
	sr.addSample(smp, s.cfg.Samples)
	sr.count(resMismatch)
}

// count counts a finished comparison, or an error, under its result.
func (sr *shadowRoute) count(res int) {
	sr.counts[res].Add(1)
	sr.results[res].Inc()
}

// drop counts a copy not sent. Rate-limited copies are skipped by design,
// not dropped, so they count in the metric only.
func (sr *shadowRoute) drop(reason int) {
	if reason != dropRateLimited {
		sr.dropped.Add(1)
	}
	sr.drops[reason].Inc()
}

// lost counts a copy that failed: dropped when the candidate's breaker
// held it back, else an error of the backends.
func (sr *shadowRoute) lost(err error) {
	if errors.Is(err, errShadowBreakerOpen) {
		sr.drop(dropBreakerOpen)
		return
	}
	sr.count(resError)
}

// noiseSet is a copy of the locations the route learned are noise.
func (sr *shadowRoute) noiseSet() map[string]bool {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	noise := make(map[string]bool, len(sr.learned))
	for k := range sr.learned {
		noise[k] = true
	}
	return noise
}

// send asks be for the job's answer. A copy to the candidate goes through
// its circuit breaker, which it feeds, so that a candidate that hangs or
// fails trips its breaker and its copies stop holding workers; a second
// question to legacy only looks at legacy's breaker, since legacy's breaker
// guards the clients and shadowing must not trip it.
func (s *shadower) send(job *shadowJob, be *backend) (answer, error) {
	cb := be.breaker
	switch {
	case cb == nil:
		return s.exchange(job, be)
	case be != job.rt.candidate:
		if cb.State() == gobreaker.StateOpen {
			return answer{}, errShadowBreakerOpen
		}
		return s.exchange(job, be)
	}
	var a answer
	_, err := cb.Execute(func() (struct{}, error) {
		var err error
		a, err = s.exchange(job, be)
		if err == nil && (a.status == 502 || a.status == 503 || a.status == 504) {
			return struct{}{}, errFailed
		}
		return struct{}{}, err
	})
	switch {
	case errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests):
		return answer{}, errShadowBreakerOpen
	case errors.Is(err, errFailed):
		return a, nil // an answer to compare; the breaker counted it failed
	}
	return a, err
}

// exchange sends the job's request to an instance of be and reads the
// answer, body capped.
func (s *shadower) exchange(job *shadowJob, be *backend) (answer, error) {
	in, err := be.pick(nil)
	if err != nil {
		return answer{}, err
	}
	req, resp := &job.req, &job.other
	if be.spec.PreserveHost && len(job.host) > 0 {
		req.Header.SetHostBytes(job.host)
	} else {
		req.Header.SetHostBytes(in.hostHdr)
	}
	uri := req.URI()
	if (string(uri.Scheme()) == "https") != in.tls {
		if in.tls {
			uri.SetScheme("https")
		} else {
			uri.SetScheme("http")
		}
	}
	resp.Reset()
	resp.StreamBody = true
	if err := in.client(s.cfg.Timeout).Do(req, resp); err != nil {
		return answer{}, err
	}
	defer resp.CloseBodyStream() //nolint:errcheck
	a := answer{status: resp.StatusCode()}
	for _, h := range job.rt.Shadow.CompareHeaders {
		a.headers = append(a.headers, string(resp.Header.Peek(h)))
	}
	if r := resp.BodyStream(); r != nil {
		b, err := io.ReadAll(io.LimitReader(r, int64(s.cfg.MaxBodyBytes)+1))
		if err != nil {
			return answer{}, err
		}
		a.body = b
	} else {
		a.body = append([]byte(nil), resp.Body()...)
	}
	return a, nil
}

// answer is one backend's answer, reduced to what is compared.
type answer struct {
	status  int
	headers []string
	body    []byte
}

// compareAnswers lists the differences between legacy's and the
// candidate's answers: status, the chosen headers, and the body, as JSON
// when both are JSON. red, if set, hides the secret values in the list.
func compareAnswers(a, b answer, pol routes.ShadowPolicy, noise map[string]bool, red *sampleRedactor) []jsondiff.Difference {
	var out []jsondiff.Difference
	if a.status != b.status && !noise["status"] {
		out = append(out, jsondiff.Difference{Path: "status", Legacy: strconv.Itoa(a.status), Candidate: strconv.Itoa(b.status)})
	}
	for i, h := range pol.CompareHeaders {
		key := "header " + h
		if i < len(a.headers) && i < len(b.headers) && a.headers[i] != b.headers[i] && !noise[key] {
			d := jsondiff.Difference{Path: key, Legacy: quoteOrAbsent(a.headers[i]), Candidate: quoteOrAbsent(b.headers[i])}
			if red.header(h) {
				d.Legacy, d.Candidate = redactPresent(d.Legacy), redactPresent(d.Candidate)
			}
			out = append(out, d)
		}
	}
	if bytes.Equal(a.body, b.body) {
		return out
	}
	av, errA := jsondiff.Decode(a.body)
	bv, errB := jsondiff.Decode(b.body)
	if errA == nil && errB == nil {
		return append(out, jsondiff.Compare(av, bv, jsondiff.Options{Ignore: pol.Ignore, Noise: noise, Redact: red.jsonRedact()})...)
	}
	if !noise["body"] {
		out = append(out, jsondiff.Difference{Path: "body", Legacy: excerpt(a.body), Candidate: excerpt(b.body)})
	}
	return out
}

// noiseLocations lists what differs between two legacy answers.
func noiseLocations(a, b answer, pol routes.ShadowPolicy) []string {
	var out []string
	if a.status != b.status {
		out = append(out, "status")
	}
	for i, h := range pol.CompareHeaders {
		if i < len(a.headers) && i < len(b.headers) && a.headers[i] != b.headers[i] {
			out = append(out, "header "+h)
		}
	}
	if bytes.Equal(a.body, b.body) {
		return out
	}
	av, errA := jsondiff.Decode(a.body)
	bv, errB := jsondiff.Decode(b.body)
	if errA == nil && errB == nil {
		return append(out, jsondiff.Locations(av, bv, jsondiff.Options{Ignore: pol.Ignore})...)
	}
	return append(out, "body")
}

// redactPresent hides a rendered header value, unless it is absent.
func redactPresent(v string) string {
	if v == jsondiff.Absent {
		return v
	}
	return jsondiff.Redacted
}

func quoteOrAbsent(s string) string {
	if s == "" {
		return jsondiff.Absent
	}
	return strconv.Quote(s)
}

func excerpt(b []byte) string {
	const max = 200
	s := string(b)
	if len(s) > max {
		s = s[:max] + "…"
	}
	return strconv.Quote(s)
}

func (sr *shadowRoute) addSample(s api.Sample, keep int) {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	if keep <= 0 {
		return
	}
	if len(sr.samples) < keep {
		sr.samples = append(sr.samples, s)
		sr.next = len(sr.samples) % keep
		return
	}
	sr.samples[sr.next] = s
	sr.next = (sr.next + 1) % keep
}

func (sr *shadowRoute) stats() api.ShadowStats {
	// Every result but an error is a comparison.
	one := api.ShadowStats{
		Matches: sr.counts[resMatch].Load(), Mismatches: sr.counts[resMismatch].Load(), Noise: sr.counts[resNoise].Load(),
		Settled: sr.counts[resSettled].Load(), Inconclusive: sr.counts[resInconclusive].Load(),
		Errors: sr.counts[resError].Load(), Dropped: sr.dropped.Load(),
	}
	one.Compared = one.Matches + one.Mismatches + one.Noise + one.Settled + one.Inconclusive
	var st api.ShadowStats
	st.Add(one)
	return st
}

func (sr *shadowRoute) report() api.RouteDiffs {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	out := api.RouteDiffs{Route: sr.id, Stats: sr.stats(), Noise: []string{}, Samples: []api.Sample{}}
	for k := range sr.learned {
		out.Noise = append(out.Noise, k)
	}
	sort.Strings(out.Noise)
	out.Samples = append(out.Samples, sr.samples...)
	sort.Slice(out.Samples, func(i, j int) bool { return out.Samples[i].Time.After(out.Samples[j].Time) })
	return out
}
