package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/stranglerkit/strangler/proxy/control"
)

var _ control.ReplicaReporter = (*Store)(nil)

// ReportReplica implements control.ReplicaReporter.
func (s *Store) ReportReplica(ctx context.Context, st control.ReplicaStatus, ttl time.Duration) error {
	if err := s.ready("report replica"); err != nil {
		return err
	}
	if st.Replica == "" {
		return errors.New("pgstore: report replica: the replica has no name")
	}
	if ttl <= 0 {
		return fmt.Errorf("pgstore: report replica %s: ttl %v, want a positive one", st.Replica, ttl)
	}
	var detail []byte
	if len(st.Detail) > 0 {
		if !json.Valid(st.Detail) {
			return fmt.Errorf("pgstore: report replica %s: the detail is not JSON", st.Replica)
		}
		if len(st.Detail) > s.opt.MaxDocument {
			return fmt.Errorf("pgstore: report replica %s: detail of %d bytes: %w (the limit is %d)", st.Replica, len(st.Detail), ErrTooLarge, s.opt.MaxDocument)
		}
		detail = st.Detail
	}
	_, err := s.pool.Exec(ctx, `
INSERT INTO control_replicas (replica, revision, version, detail, reported_at, expires_at)
VALUES ($1, $2, $3, $4, now(), now() + $5 * interval '1 microsecond')
ON CONFLICT (replica) DO UPDATE SET revision = EXCLUDED.revision, version = EXCLUDED.version,
    detail = EXCLUDED.detail, reported_at = EXCLUDED.reported_at, expires_at = EXCLUDED.expires_at`,
		st.Replica, st.Revision, st.Version, detail, ttl.Microseconds())
	if err != nil {
		return fmt.Errorf("pgstore: report replica %s: %w", st.Replica, err)
	}
	return nil
}

// Replicas implements control.ReplicaReporter. Like Instances, it deletes the
// expired reports it passes.
func (s *Store) Replicas(ctx context.Context) ([]control.ReplicaStatus, error) {
	if err := s.ready("replicas"); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `
WITH gone AS (DELETE FROM control_replicas WHERE expires_at <= now())
SELECT replica, revision, version, detail, reported_at, expires_at FROM control_replicas
WHERE expires_at > now() ORDER BY replica COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("pgstore: replicas: %w", err)
	}
	defer rows.Close()
	out := []control.ReplicaStatus{}
	for rows.Next() {
		var r control.ReplicaStatus
		var detail []byte
		if err := rows.Scan(&r.Replica, &r.Revision, &r.Version, &detail, &r.ReportedAt, &r.ExpiresAt); err != nil {
			return nil, fmt.Errorf("pgstore: replicas: %w", err)
		}
		if detail != nil {
			r.Detail = json.RawMessage(detail)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: replicas: %w", err)
	}
	return out, nil
}
