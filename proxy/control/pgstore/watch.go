package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// Changed implements control.Store. Its first call starts the listener,
// a goroutine that Close stops: on a connection of its own, it delivers
// when a notification names a revision newer than any this store has
// loaded or saved, and after each (re)connect when the stored revision
// moved while it was away, since Postgres does not replay notifications.
// The store runs no poll of its own: the safety net for a notification
// lost some other way (a writer that does not notify, a connection that
// died silently) is its consumer's poll of Revision, as control.Plane's.
// Deliveries coalesce: the channel holds one value, and a delivery while
// it is full is dropped. After Close, Changed starts nothing and its
// channel never delivers.
func (s *Store) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.watching && !s.closed.Load() {
		s.watching = true
		s.wg.Add(1)
		go s.listen()
	}
	return s.changed
}

// deliver wakes the consumer if rev is newer than the newest revision it
// has and not the one a save of this store is making: that save, if it
// commits, is no news, and if it does not, it fails with a conflict that
// wakes the consumer (see Save).
func (s *Store) deliver(rev int64) {
	if s.ownSave(rev) {
		return
	}
	s.wake(rev)
}

// wake wakes the consumer if rev is newer than the newest revision it
// has.
func (s *Store) wake(rev int64) {
	if !s.observe(rev) {
		return
	}
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Revision implements control.RevisionReader.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	if err := s.ready("revision"); err != nil {
		return 0, err
	}
	rev, err := s.storedRevision(ctx, s.pool)
	if err != nil {
		return 0, fmt.Errorf("pgstore: revision: %w", err)
	}
	return rev, nil
}

// storedRevision reads the stored revision, 0 when nothing was saved.
func (s *Store) storedRevision(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (int64, error) {
	var rev int64
	err := q.QueryRow(ctx, `SELECT revision FROM control_state WHERE id = 1`).Scan(&rev)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return rev, err
}

// ListenerName is the application_name of the listener's connection, by
// which an operator finds it in pg_stat_activity.
const ListenerName = "strangler-control-listener"

// listen keeps a LISTEN connection until Close, reconnecting with backoff
// when it fails.
func (s *Store) listen() {
	defer s.wg.Done()
	backoff := minBackoff
	for s.ctx.Err() == nil {
		connected, err := s.listenOnce()
		if s.ctx.Err() != nil {
			return
		}
		if connected {
			backoff = minBackoff
		}
		s.opt.Logger.Warn("control store listener lost its connection; reconnecting", "dsn", s.dsn, "in", backoff, "error", err)
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// listenOnce connects, listens, checks the stored revision and then
// delivers notifications until the connection fails. It reports whether
// it got as far as listening.
func (s *Store) listenOnce() (bool, error) {
	cfg := s.connCfg.Copy()
	cfg.RuntimeParams["application_name"] = ListenerName
	conn, err := pgx.ConnectConfig(s.ctx, cfg)
	if err != nil {
		return false, err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(ctx)
	}()
	if _, err := conn.Exec(s.ctx, "LISTEN "+pgx.Identifier{s.opt.Channel}.Sanitize()); err != nil {
		return false, err
	}
	// A save that committed before LISTEN took effect notified nobody
	// here; one after it will. The revision is read through the pool, so
	// that pg_stat_activity shows this connection's LISTEN.
	rev, err := s.storedRevision(s.ctx, s.pool)
	if err != nil {
		return true, err
	}
	s.deliver(rev)
	for {
		n, err := conn.WaitForNotification(s.ctx)
		if err != nil {
			return true, err
		}
		rev, err := strconv.ParseInt(n.Payload, 10, 64)
		if err != nil {
			// Another sender on the channel: look instead of trusting it.
			if rev, err = s.storedRevision(s.ctx, s.pool); err != nil {
				return true, err
			}
		}
		s.deliver(rev)
	}
}
