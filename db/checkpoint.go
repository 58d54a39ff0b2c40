package db

import (
	"context"
	"database/sql"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// SQLite checkpoints the WAL into the database file when a commit takes
// the WAL past wal_autocheckpoint pages (1,000 by default), in the
// committing connection, after the commit: it syncs the WAL, copies the
// pages and syncs the database file. Transact holds the pool's write
// semaphore until the commit returns, so every writer queued behind it
// waited for those two fsyncs too (10 to 180 ms each on a busy machine,
// several times a second at 250 orders/s: the p99 of a steady order rate).
// Open therefore raises wal_autocheckpoint to a backstop, for writes that
// do not go through Transact, and Transact starts a PASSIVE checkpoint on
// a connection of its own every checkpointEvery commits, after it has
// released the semaphore. A passive checkpoint takes none of the locks a
// writer needs, so the writers go on while it syncs.
const (
	// checkpointEvery is how many Transact commits start a background
	// checkpoint: about 1,000 pages, SQLite's own threshold, at the 15 or
	// so pages of an order.
	checkpointEvery = 64
	// autocheckpointPages is the wal_autocheckpoint that Open sets on its
	// connections: the threshold at which a commit still checkpoints
	// itself, when writes outside Transact, or a background checkpoint
	// that cannot keep up, let the WAL grow this far (40 MB of 4 KB pages).
	autocheckpointPages = 10000
	// journalSizeLimit is the size in bytes that SQLite truncates the WAL
	// file to when it starts it over, so that a burst that grew it does
	// not keep the disk space.
	journalSizeLimit = 64 << 20
	// checkpointTimeout bounds one background checkpoint.
	checkpointTimeout = time.Minute
)

// sqlitePool is what Open keeps for a SQLite pool: the write semaphore
// that Transact takes, and the state of the background checkpoints.
type sqlitePool struct {
	db  *sql.DB
	log *slog.Logger
	// sem is held by the write transaction in progress. SQLite allows one
	// writer; queueing writers in-process wakes the next one as soon as
	// the lock is free, where SQLite's own busy handler would sleep and
	// poll.
	sem chan struct{}
	// commits counts the Transact commits since the last background
	// checkpoint started.
	commits atomic.Int64
	// running is true while a background checkpoint runs: one at a time.
	running atomic.Bool

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func newSQLitePool(db *sql.DB, log *slog.Logger) *sqlitePool {
	return &sqlitePool{db: db, log: log, sem: make(chan struct{}, 1)}
}

// checkpointHook, if set by a test, runs in every background checkpoint
// before the checkpoint itself.
var checkpointHook func()

// committed counts a Transact commit, and starts a background checkpoint
// when checkpointEvery have committed since the last one started and none
// is running. Call it after the write semaphore is released.
func (p *sqlitePool) committed() {
	if p.commits.Add(1) < checkpointEvery || !p.running.CompareAndSwap(false, true) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		p.running.Store(false)
		return
	}
	p.commits.Store(0)
	p.wg.Add(1)
	go p.checkpoint()
}

// checkpoint runs one PASSIVE checkpoint: it copies what the readers
// allow and never waits for them or for the writer. A failure is logged
// and left to the next one, or to the backstop.
func (p *sqlitePool) checkpoint() {
	defer p.wg.Done()
	defer p.running.Store(false)
	if checkpointHook != nil {
		checkpointHook()
	}
	ctx, cancel := context.WithTimeout(context.Background(), checkpointTimeout)
	defer cancel()
	if _, err := p.db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)"); err != nil && p.log != nil {
		p.log.Warn("sqlite: background checkpoint failed", "error", err.Error())
	}
}

// close waits for the background checkpoint in progress, if any, and lets
// no other start, before the pool closes.
func (p *sqlitePool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.wg.Wait()
}
