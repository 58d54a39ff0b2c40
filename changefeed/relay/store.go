package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/db"
)

// gap is a run of sequence numbers below the relay's position that it has
// not seen. On Postgres a gap may be a transaction still in flight (its
// numbers were drawn before a later transaction's, but it has not
// committed), so the relay keeps looking for the rows until every
// transaction that was running when it saw the gap has ended; Horizon is the
// xmax of a snapshot taken after that, and 0 until one is.
type gap struct {
	Lo      int64 `json:"lo"`
	Hi      int64 `json:"hi"`
	Horizon int64 `json:"h,omitempty"`
}

// row is one outbox row on its way to the broker.
type row struct {
	seq int64
	ev  changefeed.Event
}

// size estimates the bytes the row takes in a produce request.
func (r *row) size() int {
	e := &r.ev
	return 120 + len(e.AggregateID) + len(e.Payload) + len(e.Source) + len(e.AggregateType) + len(e.Type) + len(e.TraceParent) + len(e.Origin)
}

// dialect holds what differs between the engines.
type dialect struct {
	name db.Dialect
	// nowMillis is an SQL expression for the database's clock in Unix
	// milliseconds. Leases use the database's clock, so relays on hosts
	// whose clocks disagree still agree on who holds the lease.
	nowMillis string
	// olderThan is an SQL condition on created_at with one parameter, the
	// age in seconds.
	olderThan string
	// finalGaps reports that a sequence number missing below a visible one
	// can never appear: true on SQLite, where one writer commits at a time.
	finalGaps bool
}

var dialects = map[db.Dialect]dialect{
	db.Postgres: {
		name:      db.Postgres,
		nowMillis: "(extract(epoch from clock_timestamp()) * 1000)::bigint",
		olderThan: "created_at < now() - make_interval(secs => ?)",
	},
	db.SQLite: {
		name:      db.SQLite,
		nowMillis: "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
		olderThan: "created_at < strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || CAST(? AS TEXT) || ' seconds')",
		finalGaps: true,
	},
}

// store is the relay's view of the database: the outbox rows and the relay
// group's lease and position.
type store struct {
	gdb   *gorm.DB
	d     dialect
	name  string
	owner string
}

// ErrLeaseLost is returned when another relay took over the group's lease.
var ErrLeaseLost = errors.New("relay lease lost to another instance")

const columns = "seq, id, source, aggregatetype, aggregateid, type, schema_version, occurred_at, traceparent, origin, payload"

func (s *store) ensureGroup(ctx context.Context) error {
	err := s.gdb.WithContext(ctx).Exec("INSERT INTO outbox_relay (name) VALUES (?) ON CONFLICT (name) DO NOTHING", s.name).Error
	if err != nil {
		return fmt.Errorf("relay group %q: %w", s.name, err)
	}
	return nil
}

// acquire takes or renews the lease. It reports whether this instance holds
// it, and the owner it took it from when that owner's process was gone.
func (s *store) acquire(ctx context.Context, ttl time.Duration) (held bool, from string, err error) {
	res := s.gdb.WithContext(ctx).Exec(
		"UPDATE outbox_relay SET owner = ?, lease_until = "+s.d.nowMillis+" + ? WHERE name = ? AND (owner = ? OR lease_until < "+s.d.nowMillis+")",
		s.owner, ttl.Milliseconds(), s.name, s.owner)
	if res.Error != nil {
		return false, "", fmt.Errorf("relay lease: %w", res.Error)
	}
	if res.RowsAffected == 1 {
		return true, "", nil
	}
	// Another instance holds the lease. If its process is gone, killed on
	// this host, take the lease now, fenced on that owner so that of two
	// standbys only one wins; otherwise wait for it to expire.
	var owners []string
	if err := s.gdb.WithContext(ctx).Raw("SELECT owner FROM outbox_relay WHERE name = ?", s.name).Scan(&owners).Error; err != nil {
		return false, "", fmt.Errorf("relay lease: %w", err)
	}
	if len(owners) != 1 || !goneLocal(owners[0]) {
		return false, "", nil
	}
	res = s.gdb.WithContext(ctx).Exec(
		"UPDATE outbox_relay SET owner = ?, lease_until = "+s.d.nowMillis+" + ? WHERE name = ? AND owner = ?",
		s.owner, ttl.Milliseconds(), s.name, owners[0])
	if res.Error != nil {
		return false, "", fmt.Errorf("relay lease: %w", res.Error)
	}
	if res.RowsAffected != 1 {
		return false, "", nil
	}
	return true, owners[0], nil
}

// release gives the lease up, so that a standby takes over at once.
func (s *store) release(ctx context.Context) error {
	return s.gdb.WithContext(ctx).Exec("UPDATE outbox_relay SET lease_until = 0 WHERE name = ? AND owner = ?", s.name, s.owner).Error
}

func (s *store) load(ctx context.Context) (int64, []gap, error) {
	var st struct {
		Position int64
		Gaps     string
	}
	err := s.gdb.WithContext(ctx).Raw("SELECT position, gaps FROM outbox_relay WHERE name = ?", s.name).Scan(&st).Error
	if err != nil {
		return 0, nil, fmt.Errorf("relay state: %w", err)
	}
	var gaps []gap
	if st.Gaps != "" {
		if err := json.Unmarshal([]byte(st.Gaps), &gaps); err != nil {
			return 0, nil, fmt.Errorf("relay state: gaps: %w", err)
		}
	}
	return st.Position, gaps, nil
}

// commit records the new position and gaps and renews the lease, fenced on
// owning it: a relay that lost its lease cannot move the position.
func (s *store) commit(ctx context.Context, position int64, gaps []gap, published int, ttl time.Duration) error {
	g, err := json.Marshal(gaps)
	if err != nil {
		return err
	}
	if gaps == nil {
		g = []byte("[]")
	}
	update := func(tx *gorm.DB) *gorm.DB {
		return tx.Exec(
			"UPDATE outbox_relay SET position = ?, gaps = ?, published = published + ?, lease_until = "+s.d.nowMillis+" + ?, updated_at = CURRENT_TIMESTAMP WHERE name = ? AND owner = ?",
			position, string(g), published, ttl.Milliseconds(), s.name, s.owner)
	}
	var affected int64
	if s.d.name == db.Postgres {
		// The position need not wait for the disk: a position lost in a
		// crash only makes the next relay publish its batch again, which
		// at-least-once delivery allows. Skipping the flush takes the
		// commit's fsync off the relay's path.
		err = s.gdb.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec("SET LOCAL synchronous_commit TO OFF").Error; err != nil {
				return err
			}
			res := update(tx)
			affected = res.RowsAffected
			return res.Error
		})
	} else {
		res := update(s.gdb.WithContext(ctx))
		affected, err = res.RowsAffected, res.Error
	}
	if err != nil {
		return fmt.Errorf("relay commit position %d: %w", position, err)
	}
	if affected != 1 {
		return ErrLeaseLost
	}
	return nil
}

// snapshot returns the xmin and xmax of a current Postgres snapshot: every
// transaction with an xid below xmin has ended, and every one that starts
// later gets an xid of at least xmax.
func (s *store) snapshot(ctx context.Context) (xmin, xmax int64, err error) {
	var r struct{ Xmin, Xmax string }
	err = s.gdb.WithContext(ctx).Raw("SELECT pg_snapshot_xmin(s)::text AS xmin, pg_snapshot_xmax(s)::text AS xmax FROM pg_current_snapshot() AS s").Scan(&r).Error
	if err != nil {
		return 0, 0, fmt.Errorf("relay snapshot: %w", err)
	}
	if xmin, err = strconv.ParseInt(r.Xmin, 10, 64); err == nil {
		xmax, err = strconv.ParseInt(r.Xmax, 10, 64)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("relay snapshot %+v: %w", r, err)
	}
	return xmin, xmax, nil
}

// readAfter returns up to limit rows above position, in seq order.
func (s *store) readAfter(ctx context.Context, position int64, limit int) ([]row, error) {
	return s.query(ctx, "SELECT "+columns+" FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", position, limit)
}

// maxGapRanges bounds the ranges one gap query looks at; readGaps reads
// more in several queries.
const maxGapRanges = 200

// readGaps returns the rows that have appeared in gaps, in seq order. It
// reads every gap, in queries of up to maxGapRanges ranges: a gap left
// unread while the relay publishes past it could hold an aggregate's
// earlier event (see cycle).
func (s *store) readGaps(ctx context.Context, gaps []gap) ([]row, error) {
	var out []row
	for len(gaps) > 0 {
		part := gaps[:min(len(gaps), maxGapRanges)]
		gaps = gaps[len(part):]
		var sb strings.Builder
		args := make([]any, 0, 2*len(part))
		sb.WriteString("SELECT " + columns + " FROM outbox WHERE ")
		for i, g := range part {
			if i > 0 {
				sb.WriteString(" OR ")
			}
			sb.WriteString("seq BETWEEN ? AND ?")
			args = append(args, g.Lo, g.Hi)
		}
		sb.WriteString(" ORDER BY seq")
		rows, err := s.query(ctx, sb.String(), args...)
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
	}
	return out, nil
}

func (s *store) query(ctx context.Context, q string, args ...any) ([]row, error) {
	rs, err := s.gdb.WithContext(ctx).Raw(q, args...).Rows()
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	defer rs.Close()
	var out []row
	for rs.Next() {
		var (
			r        row
			id       string
			payload  []byte
			occurred time.Time
		)
		e := &r.ev
		if err := rs.Scan(&r.seq, &id, &e.Source, &e.AggregateType, &e.AggregateID, &e.Type, &e.SchemaVersion, &occurred, &e.TraceParent, &e.Origin, &payload); err != nil {
			return nil, fmt.Errorf("read outbox: %w", err)
		}
		u, err := uuid.Parse(id)
		if err != nil {
			return nil, fmt.Errorf("read outbox: row %d: id %q: %w", r.seq, id, err)
		}
		e.ID = u
		e.Payload = payload
		e.OccurredAt = occurred
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	return out, nil
}

// backlog counts the rows above position, up to limit, and returns the
// creation time of the oldest.
func (s *store) backlog(ctx context.Context, position int64, limit int) (int64, time.Time, error) {
	var n int64
	conn := s.gdb.WithContext(ctx)
	if err := conn.Raw("SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE seq > ? LIMIT ?) AS b", position, limit).Scan(&n).Error; err != nil {
		return 0, time.Time{}, fmt.Errorf("outbox backlog: %w", err)
	}
	if n == 0 {
		return 0, time.Time{}, nil
	}
	var created []time.Time
	if err := conn.Raw("SELECT created_at FROM outbox WHERE seq > ? ORDER BY seq LIMIT 1", position).Pluck("created_at", &created).Error; err != nil {
		return 0, time.Time{}, fmt.Errorf("outbox backlog: %w", err)
	}
	if len(created) == 0 {
		return n, time.Time{}, nil
	}
	return n, created[0], nil
}

// cleanupChunk bounds one DELETE, so that SQLite's write lock is never held
// for long.
const cleanupChunk = 5000

// cleanup deletes rows that every relay group has published and that are
// older than retention. It returns how many it deleted.
func (s *store) cleanup(ctx context.Context, retention time.Duration) (int64, error) {
	conn := s.gdb.WithContext(ctx)
	type group struct {
		Position int64
		Gaps     string
	}
	var groups []group
	if err := conn.Raw("SELECT position, gaps FROM outbox_relay").Scan(&groups).Error; err != nil {
		return 0, fmt.Errorf("outbox cleanup: %w", err)
	}
	if len(groups) == 0 {
		return 0, nil
	}
	// safe is the highest seq that every group has either published or
	// given up on: below its position and below its lowest open gap.
	safe := int64(-1)
	for _, g := range groups {
		limit := g.Position
		var gaps []gap
		if err := json.Unmarshal([]byte(g.Gaps), &gaps); err == nil {
			for _, gp := range gaps {
				limit = min(limit, gp.Lo-1)
			}
		}
		if safe < 0 || limit < safe {
			safe = limit
		}
	}
	var total int64
	for {
		res := conn.Exec("DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE seq <= ? AND "+s.d.olderThan+" ORDER BY seq LIMIT ?)",
			safe, int64(retention.Seconds()), cleanupChunk)
		if res.Error != nil {
			return total, fmt.Errorf("outbox cleanup: %w", res.Error)
		}
		total += res.RowsAffected
		if res.RowsAffected < cleanupChunk || ctx.Err() != nil {
			return total, nil
		}
	}
}

// fillGaps removes the sequence numbers of found rows from gaps.
func fillGaps(gaps []gap, found []row) []gap {
	if len(found) == 0 {
		return gaps
	}
	seqs := make([]int64, len(found))
	for i, r := range found {
		seqs[i] = r.seq
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	var out []gap
	for _, g := range gaps {
		lo := g.Lo
		for _, s := range seqs {
			if s < lo || s > g.Hi {
				continue
			}
			if s > lo {
				out = append(out, gap{Lo: lo, Hi: s - 1, Horizon: g.Horizon})
			}
			lo = s + 1
		}
		if lo <= g.Hi {
			out = append(out, gap{Lo: lo, Hi: g.Hi, Horizon: g.Horizon})
		}
	}
	return out
}

// newGaps returns the runs of sequence numbers missing between position and
// the rows read after it.
func newGaps(position int64, rows []row) []gap {
	var out []gap
	prev := position
	for _, r := range rows {
		if r.seq > prev+1 {
			out = append(out, gap{Lo: prev + 1, Hi: r.seq - 1})
		}
		prev = r.seq
	}
	return out
}
