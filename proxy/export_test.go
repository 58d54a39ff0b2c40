package proxy

import (
	"net"
	"sync/atomic"
	"time"
)

// PauseShadow holds the shadow workers until resume is called, so that a
// test can fill the queue.
func (p *Proxy) PauseShadow() (resume func()) {
	p.shadow.pause.Lock()
	return p.shadow.pause.Unlock
}

// ShadowQueueLen is how many copies wait.
func (p *Proxy) ShadowQueueLen() int { return len(p.shadow.queue) }

// CountBackendDials counts the connections to backends dialled from now
// on, until restore; call it before the proxy starts and restore after it
// stopped.
func CountBackendDials() (count func() int64, restore func()) {
	var n atomic.Int64
	prev := dialTCP
	dialTCP = func(addr string, timeout time.Duration) (net.Conn, error) {
		n.Add(1)
		return prev(addr, timeout)
	}
	return n.Load, func() { dialTCP = prev }
}
