package proxy

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/jsondiff"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// HeaderShadow marks the copies sent to a candidate in shadow mode:
// "copy" for safe methods and "dry-run" for writes, which a candidate must
// not commit.
const HeaderShadow = "X-Strangler-Shadow"

// shadower sends shadow copies from a bounded queue with a fixed pool of
// workers, compares the answers and keeps the results per route. The data
// plane only ever does a non-blocking send: a full queue drops the copy.
type shadower struct {
	p     *Proxy
	cfg   ShadowConfig
	queue chan *shadowJob
	pool  sync.Pool

	mu     sync.Mutex
	routes map[string]*shadowRoute

	// pause holds the workers, for tests that fill the queue.
	pause sync.RWMutex

	// The per-second cap: the current second and the copies taken in it.
	second atomic.Int64
	taken  atomic.Int64
}

// shadowRoute is one route's comparison results; it survives table changes.
type shadowRoute struct {
	id, module string

	compared, matches, mismatches, noise, settled, errors, dropped atomic.Int64

	mMatch, mMismatch, mNoise, mSettled, mError         prometheus.Counter
	dropQueue, dropBody, dropNotReplayable, rateLimited prometheus.Counter

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

	legacyStatus  int
	legacyHeaders []string
	legacyBody    []byte
	over          bool
	tee           teeBody
	// recheck marks a job queued again after a mismatch, to ask both
	// sides once more.
	recheck bool
}

func newShadower(p *Proxy, cfg ShadowConfig) *shadower {
	s := &shadower{p: p, cfg: cfg, queue: make(chan *shadowJob, cfg.Queue), routes: map[string]*shadowRoute{}}
	s.pool.New = func() any { return &shadowJob{s: s} }
	return s
}

// run works the queue until ctx ends.
func (s *shadower) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range s.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case job := <-s.queue:
					s.pause.RLock()
					if !s.work(job) {
						job.release()
					}
					s.pause.RUnlock()
				}
			}
		}()
	}
	wg.Wait()
}

func (s *shadower) route(r *routes.Route) *shadowRoute {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sr, ok := s.routes[r.ID]; ok && sr.module == r.Module {
		return sr
	}
	m := s.p.m
	sr := &shadowRoute{
		id: r.ID, module: r.Module, learned: map[string]bool{},
		mMatch:            m.shadow.WithLabelValues(r.ID, r.Module, "match"),
		mMismatch:         m.shadow.WithLabelValues(r.ID, r.Module, "mismatch"),
		mNoise:            m.shadow.WithLabelValues(r.ID, r.Module, "noise"),
		mSettled:          m.shadow.WithLabelValues(r.ID, r.Module, "settled"),
		mError:            m.shadow.WithLabelValues(r.ID, r.Module, "error"),
		dropQueue:         m.shadowDrop.WithLabelValues(r.ID, r.Module, "queue_full"),
		dropBody:          m.shadowDrop.WithLabelValues(r.ID, r.Module, "body_too_large"),
		dropNotReplayable: m.shadowDrop.WithLabelValues(r.ID, r.Module, "not_replayable"),
		rateLimited:       m.shadowDrop.WithLabelValues(r.ID, r.Module, "rate_limited"),
	}
	s.routes[r.ID] = sr
	return sr
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
	if !st.replay {
		sr.dropped.Add(1)
		sr.dropNotReplayable.Inc()
		return nil
	}
	if len(st.ctx.Request.Body()) > s.cfg.MaxBodyBytes {
		sr.dropped.Add(1)
		sr.dropBody.Inc()
		return nil
	}
	if len(s.queue) == cap(s.queue) {
		sr.dropped.Add(1)
		sr.dropQueue.Inc()
		return nil
	}
	if !s.allow() {
		sr.rateLimited.Inc()
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
	ctx.Request.Header.CopyTo(&job.req.Header)
	job.req.SetBody(ctx.Request.Body())
	b := append(st.scratch[:0], st.path...)
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

// submit queues a finished job, or drops it when the queue is full or the
// exchange was incomplete or too large.
func (s *shadower) submit(job *shadowJob, complete bool) {
	sr := job.sr
	if !complete {
		job.release()
		return
	}
	if job.over {
		sr.dropped.Add(1)
		sr.dropBody.Inc()
		job.release()
		return
	}
	select {
	case s.queue <- job:
	default:
		sr.dropped.Add(1)
		sr.dropQueue.Inc()
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
	status, headers, body, err := s.send(job, rt.candidate)
	if err != nil {
		sr.failed()
		s.p.log.Debug("shadow copy failed", "route", rt.ID, "request_id", job.reqID, "error", err)
		return false
	}
	legacy := answer{status: job.legacyStatus, headers: job.legacyHeaders, body: job.legacyBody}
	cand := answer{status: status, headers: headers, body: body}
	noise := sr.noiseSet()
	diffs := compareAnswers(legacy, cand, rt.Shadow, noise)
	if len(diffs) == 0 {
		sr.tally(&sr.matches, sr.mMatch)
		return false
	}
	// Diffy's noise cancelling: ask legacy again; whatever differs between
	// its two answers is noise, for this request and, learned, for the
	// route. Only for safe methods: a write is never sent twice.
	safe := routes.IsSafe([]byte(job.method))
	if safe {
		s2, h2, b2, err := s.send(job, rt.legacy)
		if err == nil {
			second := answer{status: s2, headers: h2, body: b2}
			learned := noiseLocations(legacy, second, rt.Shadow)
			if len(learned) > 0 {
				sr.mu.Lock()
				for _, l := range learned {
					sr.learned[l] = true
					noise[l] = true
				}
				sr.mu.Unlock()
				diffs = compareAnswers(legacy, cand, rt.Shadow, noise)
			}
		}
	}
	if len(diffs) == 0 {
		sr.tally(&sr.noise, sr.mNoise)
		return false
	}
	if safe && s.cfg.Recheck > 0 && s.allow() {
		// A lagging candidate: ask both again a little later.
		job.recheck = true
		time.AfterFunc(s.cfg.Recheck, func() {
			select {
			case s.queue <- job:
			default:
				s.mismatch(job, status, diffs)
				job.release()
			}
		})
		return true
	}
	s.mismatch(job, status, diffs)
	return false
}

// recheckJob asks legacy and the candidate again after a mismatch; when
// their fresh answers agree, the mismatch was the candidate lagging.
func (s *shadower) recheckJob(job *shadowJob) {
	sr, rt := job.sr, job.rt
	ls, lh, lb, err := s.send(job, rt.legacy)
	if err != nil {
		sr.failed()
		return
	}
	legacy := answer{status: ls, headers: lh, body: lb}
	cs, ch, cb, err := s.send(job, rt.candidate)
	if err != nil {
		sr.failed()
		return
	}
	diffs := compareAnswers(legacy, answer{status: cs, headers: ch, body: cb}, rt.Shadow, sr.noiseSet())
	if len(diffs) == 0 {
		sr.tally(&sr.settled, sr.mSettled)
		return
	}
	job.legacyStatus = ls
	s.mismatch(job, cs, diffs)
}

// mismatch records a comparison that differed, with a sample.
func (s *shadower) mismatch(job *shadowJob, candStatus int, diffs []jsondiff.Difference) {
	sr := job.sr
	// The sample first, so that a reader who sees the count sees it too.
	sr.addSample(api.Sample{
		Time: time.Now().UTC(), RequestID: job.reqID, Method: job.method, URI: job.uri,
		LegacyStatus: job.legacyStatus, CandidateStatus: candStatus, Differences: diffs,
	}, s.cfg.Samples)
	sr.tally(&sr.mismatches, sr.mMismatch)
}

// tally counts a finished comparison under its result.
func (sr *shadowRoute) tally(n *atomic.Int64, m prometheus.Counter) {
	n.Add(1)
	m.Inc()
	sr.compared.Add(1)
}

// failed counts a copy the backends did not answer.
func (sr *shadowRoute) failed() {
	sr.errors.Add(1)
	sr.mError.Inc()
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

// send sends the job's request to an instance of be and reads the answer,
// body capped.
func (s *shadower) send(job *shadowJob, be *backend) (int, []string, []byte, error) {
	in, err := be.pick(nil)
	if err != nil {
		return 0, nil, nil, err
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
		return 0, nil, nil, err
	}
	defer resp.CloseBodyStream() //nolint:errcheck
	var headers []string
	for _, h := range job.rt.Shadow.CompareHeaders {
		headers = append(headers, string(resp.Header.Peek(h)))
	}
	var body []byte
	if r := resp.BodyStream(); r != nil {
		b, err := io.ReadAll(io.LimitReader(r, int64(s.cfg.MaxBodyBytes)+1))
		if err != nil {
			return 0, nil, nil, err
		}
		body = b
	} else {
		body = append([]byte(nil), resp.Body()...)
	}
	return resp.StatusCode(), headers, body, nil
}

// answer is one backend's answer, reduced to what is compared.
type answer struct {
	status  int
	headers []string
	body    []byte
}

// compareAnswers lists the differences between legacy's and the
// candidate's answers: status, the chosen headers, and the body, as JSON
// when both are JSON.
func compareAnswers(a, b answer, pol routes.ShadowPolicy, noise map[string]bool) []jsondiff.Difference {
	var out []jsondiff.Difference
	if a.status != b.status && !noise["status"] {
		out = append(out, jsondiff.Difference{Path: "status", Legacy: strconv.Itoa(a.status), Candidate: strconv.Itoa(b.status)})
	}
	for i, h := range pol.CompareHeaders {
		key := "header " + h
		if i < len(a.headers) && i < len(b.headers) && a.headers[i] != b.headers[i] && !noise[key] {
			out = append(out, jsondiff.Difference{Path: key, Legacy: quoteOrAbsent(a.headers[i]), Candidate: quoteOrAbsent(b.headers[i])})
		}
	}
	if bytes.Equal(a.body, b.body) {
		return out
	}
	av, errA := jsondiff.Decode(a.body)
	bv, errB := jsondiff.Decode(b.body)
	if errA == nil && errB == nil {
		return append(out, jsondiff.Compare(av, bv, jsondiff.Options{Ignore: pol.Ignore, Noise: noise})...)
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
	st := api.ShadowStats{
		Compared: sr.compared.Load(), Matches: sr.matches.Load(), Mismatches: sr.mismatches.Load(),
		Noise: sr.noise.Load(), Settled: sr.settled.Load(), Errors: sr.errors.Load(), Dropped: sr.dropped.Load(),
	}
	if st.Compared > 0 {
		st.MismatchRate = float64(st.Mismatches) / float64(st.Compared)
	}
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

// FormatSample renders a mismatch as readable lines.
func FormatSample(s api.Sample) string {
	var b strings.Builder
	b.WriteString(s.Method + " " + s.URI + "  (request " + s.RequestID + ", " + s.Time.Format(time.RFC3339) + ")\n")
	for _, d := range s.Differences {
		b.WriteString("  " + d.String() + "\n")
	}
	return b.String()
}
