package proxy

// PauseShadow holds the shadow workers until resume is called, so that a
// test can fill the queue.
func (p *Proxy) PauseShadow() (resume func()) {
	p.shadow.pause.Lock()
	return p.shadow.pause.Unlock
}

// ShadowQueueLen is how many copies wait.
func (p *Proxy) ShadowQueueLen() int { return len(p.shadow.queue) }

// RouteStateSizes is how many modules have a fallback total and how many
// routes have shadow results, for tests that check that removed ones go.
func (p *Proxy) RouteStateSizes() (fallbackModules, shadowRoutes int) {
	p.fbTotals.Range(func(any, any) bool { fallbackModules++; return true })
	p.shadow.mu.Lock()
	defer p.shadow.mu.Unlock()
	return fallbackModules, len(p.shadow.routes)
}
