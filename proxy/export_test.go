package proxy

// PauseShadow holds the shadow workers until resume is called, so that a
// test can fill the queue.
func (p *Proxy) PauseShadow() (resume func()) {
	p.shadow.pause.Lock()
	return p.shadow.pause.Unlock
}

// ShadowQueueLen is how many copies wait.
func (p *Proxy) ShadowQueueLen() int { return len(p.shadow.queue) }
