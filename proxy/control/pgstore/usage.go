package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stranglerkit/strangler/proxy/control"
)

// addUsageSQL adds one delta to its row. The row's template is the
// delta's while the route has fewer than the cap's templates or the row
// exists, else control.OtherTemplate; two replicas that add new templates
// of one route at once may each see room, so a route may go over the cap
// by the templates of one flush per replica. The arrays add element by
// element; GREATEST ignores a NULL time.
const addUsageSQL = `
INSERT INTO control_usage AS u (module, route, template, legacy, candidate, methods, last_seen, last_legacy)
SELECT $1::text, $2::text,
    CASE WHEN $3::text = $9::text
        OR EXISTS (SELECT 1 FROM control_usage WHERE module = $1 AND route = $2 AND template = $3)
        OR (SELECT count(*) FROM control_usage WHERE module = $1 AND route = $2 AND template <> $9) < $10::bigint
    THEN $3 ELSE $9 END,
    $4::bigint[], $5::bigint[], $6::integer, $7::timestamptz, $8::timestamptz
ON CONFLICT (module, route, template) DO UPDATE SET
    legacy = ARRAY(SELECT a + b FROM unnest(u.legacy, EXCLUDED.legacy) WITH ORDINALITY AS t(a, b, i) ORDER BY i),
    candidate = ARRAY(SELECT a + b FROM unnest(u.candidate, EXCLUDED.candidate) WITH ORDINALITY AS t(a, b, i) ORDER BY i),
    methods = u.methods | EXCLUDED.methods,
    last_seen = GREATEST(u.last_seen, EXCLUDED.last_seen),
    last_legacy = GREATEST(u.last_legacy, EXCLUDED.last_legacy)`

// AddUsage implements control.Store. The deltas go in one transaction,
// in key order, so that replicas that flush the same rows at once do not
// deadlock, and a failed flush adds nothing: the replica sends the deltas
// again with its next one.
func (s *Store) AddUsage(ctx context.Context, deltas []control.Usage) error {
	if err := s.ready("add usage"); err != nil {
		return err
	}
	if len(deltas) == 0 {
		return nil
	}
	sorted := append([]control.Usage(nil), deltas...)
	control.SortUsage(sorted)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, d := range sorted {
			b.Queue(addUsageSQL, d.Module, d.Route, d.Template, d.Legacy[:], d.Candidate[:], int32(d.Methods),
				nullTime(d.LastSeen), nullTime(d.LastLegacy), control.OtherTemplate, control.MaxUsageTemplates)
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("pgstore: add usage: %w", err)
	}
	return nil
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Usage implements control.Store.
func (s *Store) Usage(ctx context.Context) ([]control.Usage, error) {
	if err := s.ready("usage"); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT module, route, template, legacy, candidate, methods, last_seen, last_legacy
FROM control_usage ORDER BY module COLLATE "C", route COLLATE "C", template COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("pgstore: usage: %w", err)
	}
	defer rows.Close()
	out := []control.Usage{}
	for rows.Next() {
		var u control.Usage
		var legacy, candidate []int64
		var methods int32
		var seen, seenLegacy *time.Time
		if err := rows.Scan(&u.Module, &u.Route, &u.Template, &legacy, &candidate, &methods, &seen, &seenLegacy); err != nil {
			return nil, fmt.Errorf("pgstore: usage: %w", err)
		}
		copy(u.Legacy[:], legacy)
		copy(u.Candidate[:], candidate)
		u.Methods = uint32(methods)
		if seen != nil {
			u.LastSeen = seen.UTC()
		}
		if seenLegacy != nil {
			u.LastLegacy = seenLegacy.UTC()
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: usage: %w", err)
	}
	return out, nil
}
