// Package backfill turns the existing rows of a table into events, so that a
// new service gets its initial copy through the same stream it then
// follows.
//
// It is generic: a Job names a table, its key column and how a row becomes a
// payload, and the events go into the outbox of the table's database, where
// the relay publishes them in line with the live events.
//
// # Watermarks
//
// The snapshot must never overwrite a newer live change with an older copy
// of a row (Debezium's incremental snapshot, after Netflix's DBLog). For each
// chunk, backfill reads the rows together with a low watermark per row: the
// highest outbox seq of that row's aggregate, in the same statement, so from
// the same snapshot. It then writes the chunk's events in a transaction; on
// Postgres each insert takes the aggregate's lock (the outbox trigger), so
// no live event of those aggregates can commit until the transaction ends.
// Under those locks it reads the high watermarks. An aggregate whose
// watermark moved had a live change committed while the chunk was in
// flight: its snapshot event is dropped, and the live event, which carries
// the newer state, wins. The rest are committed with the progress, so that
// an interrupted backfill resumes after the last committed chunk.
//
// Dropping a snapshot event is right when the live events carry the
// aggregate's state (as Debezium's change events carry the row), which is
// what consumers of a backfill need anyway.
package backfill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/internal/sqltext"
	"github.com/stranglerkit/strangler/changefeed/outbox"
	"github.com/stranglerkit/strangler/db"
)

// Job describes one backfill. It is an entry of the "backfill.jobs" list in
// the config.
type Job struct {
	// Name identifies the job's progress, so that a second run resumes it.
	Name string `yaml:"name"`
	// DSN names the database that holds the table and the outbox. If empty,
	// the monolith's database (monolith.dsn) is used.
	DSN string `yaml:"dsn"`
	// Table is the table to snapshot, optionally schema-qualified.
	Table string `yaml:"table"`
	// Key is the table's key column: chunks are taken in its order, and its
	// text as the database renders it (CAST AS TEXT) is each event's
	// aggregate id, the key verify reports the row by. If empty, "id" is
	// used.
	Key string `yaml:"key"`
	// Columns lists the columns that go into the payload. If empty, all.
	Columns []string `yaml:"columns"`
	// Rename maps column names to payload field names.
	Rename map[string]string `yaml:"rename"`
	// AggregateType is the events' aggregate type; it selects the topic. If
	// empty, the table's name is used.
	AggregateType string `yaml:"aggregate_type"`
	// EventType is the events' type. If empty, "<aggregate_type>.snapshot"
	// is used.
	EventType string `yaml:"event_type"`
	// SchemaVersion is the payload's schema version. If zero, 1.
	SchemaVersion int `yaml:"schema_version"`
	// Source is the events' source. If empty, "backfill".
	Source string `yaml:"source"`
	// ChunkSize is the number of rows per chunk and transaction. If zero,
	// 1000.
	ChunkSize int `yaml:"chunk_size"`
}

// SetDefaults fills the empty fields.
func (j *Job) SetDefaults() {
	if j.Key == "" {
		j.Key = "id"
	}
	if j.AggregateType == "" {
		j.AggregateType = j.Table
		if i := strings.LastIndexByte(j.AggregateType, '.'); i >= 0 {
			j.AggregateType = j.AggregateType[i+1:]
		}
	}
	if j.EventType == "" {
		j.EventType = j.AggregateType + ".snapshot"
	}
	if j.SchemaVersion == 0 {
		j.SchemaVersion = 1
	}
	if j.Source == "" {
		j.Source = "backfill"
	}
	if j.ChunkSize == 0 {
		j.ChunkSize = 1000
	}
}

var (
	identifier    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)
	tableRef      = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]{0,62}\.)?[A-Za-z_][A-Za-z0-9_]{0,62}$`)
	jobName       = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,100}$`)
	aggregateType = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,200}$`)
)

// Validate reports every invalid field, named by its YAML key.
func (j Job) Validate() error {
	var errs []error
	if !jobName.MatchString(j.Name) {
		errs = append(errs, fmt.Errorf("name: %q: want 1 to 100 of a-z, A-Z, 0-9, '.', '_' or '-'", j.Name))
	}
	if j.DSN != "" {
		if _, err := db.ParseDSN(j.DSN); err != nil {
			errs = append(errs, fmt.Errorf("dsn: %w", err))
		}
	}
	if !tableRef.MatchString(j.Table) {
		errs = append(errs, fmt.Errorf("table: %q is not a plain (optionally schema-qualified) table name", j.Table))
	}
	if !identifier.MatchString(j.Key) {
		errs = append(errs, fmt.Errorf("key: %q is not a plain column name", j.Key))
	}
	for i, c := range j.Columns {
		if !identifier.MatchString(c) {
			errs = append(errs, fmt.Errorf("columns[%d]: %q is not a plain column name", i, c))
		}
	}
	if tableRef.MatchString(j.Table) && !aggregateType.MatchString(j.AggregateType) {
		errs = append(errs, fmt.Errorf("aggregate_type: %q: want 1 to 200 of a-z, A-Z, 0-9, '.', '_' or '-', since it names a topic", j.AggregateType))
	}
	if j.EventType == "" {
		errs = append(errs, errors.New("event_type: must not be empty"))
	}
	if j.Source == "" {
		errs = append(errs, errors.New("source: must not be empty"))
	}
	if j.SchemaVersion < 0 {
		errs = append(errs, fmt.Errorf("schema_version: must not be negative, not %d", j.SchemaVersion))
	}
	if j.ChunkSize < 1 || j.ChunkSize > 10000 {
		errs = append(errs, fmt.Errorf("chunk_size: want 1 to 10000, not %d", j.ChunkSize))
	}
	return errors.Join(errs...)
}

// Row is one row of the table, by column name.
type Row map[string]any

// Options are what a backfill needs besides its job.
type Options struct {
	// DB holds the table and the outbox.
	DB *gorm.DB
	// Map turns a row into the event's payload, which is encoded as JSON.
	// If nil, the payload is an object of the job's columns, renamed.
	Map func(Row) (any, error)
	// Restart starts over from the first row, even if the job finished.
	Restart bool
	// OnChunk, if set, is called after a chunk's rows are read and before
	// their events are written, with the chunk's aggregate ids: a progress
	// report, or a test's chance to make a live change inside the window.
	OnChunk func(ctx context.Context, ids []string)
	// Logger receives progress. If nil, slog.Default().
	Logger *slog.Logger
}

// Result sums up a run.
type Result struct {
	Job     string `json:"job"`
	Table   string `json:"table"`
	Chunks  int64  `json:"chunks"`
	Rows    int64  `json:"rows"`
	Events  int64  `json:"events"`
	Dropped int64  `json:"dropped"`
	LastKey string `json:"last_key"`
	Done    bool   `json:"done"`
	Resumed bool   `json:"resumed"`
}

// ErrConcurrent is returned when another run of the same job moved its
// progress under this one.
var ErrConcurrent = errors.New("another run of this backfill job is in progress")

// Run snapshots the job's table into the outbox, chunk by chunk, resuming
// where an earlier run of the job stopped.
func Run(ctx context.Context, job Job, opt Options) (Result, error) {
	job.SetDefaults()
	if err := job.Validate(); err != nil {
		return Result{}, fmt.Errorf("backfill job %q: %w", job.Name, err)
	}
	if opt.DB == nil {
		return Result{}, errors.New("backfill: no database")
	}
	log := opt.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("backfill", job.Name, "table", job.Table)
	b := &run{job: job, opt: opt, log: log, gdb: opt.DB}
	return b.run(ctx)
}

type run struct {
	job Job
	opt Options
	log *slog.Logger
	gdb *gorm.DB
}

type progress struct {
	SourceTable string
	LastKey     *string
	KeyKind     string
	Done        bool
	Chunks      int64
	RowsRead    int64
	Events      int64
	Dropped     int64
}

func (b *run) run(ctx context.Context) (Result, error) {
	res := Result{Job: b.job.Name, Table: b.job.Table}
	conn := b.gdb.WithContext(ctx)
	if err := conn.Exec("INSERT INTO outbox_backfill (name, source_table) VALUES (?, ?) ON CONFLICT (name) DO NOTHING", b.job.Name, b.job.Table).Error; err != nil {
		return res, fmt.Errorf("backfill %q: progress: %w", b.job.Name, err)
	}
	if b.opt.Restart {
		if err := conn.Exec("UPDATE outbox_backfill SET last_key = NULL, key_kind = '', done = ?, chunks = 0, rows_read = 0, events = 0, dropped = 0, source_table = ?, started_at = CURRENT_TIMESTAMP WHERE name = ?", false, b.job.Table, b.job.Name).Error; err != nil {
			return res, fmt.Errorf("backfill %q: restart: %w", b.job.Name, err)
		}
	}
	var p progress
	if err := conn.Raw("SELECT source_table, last_key, key_kind, done, chunks, rows_read, events, dropped FROM outbox_backfill WHERE name = ?", b.job.Name).Scan(&p).Error; err != nil {
		return res, fmt.Errorf("backfill %q: progress: %w", b.job.Name, err)
	}
	if p.SourceTable != b.job.Table {
		return res, fmt.Errorf("backfill %q snapshotted table %s before, not %s: use another name, or restart it", b.job.Name, p.SourceTable, b.job.Table)
	}
	res.Chunks, res.Rows, res.Events, res.Dropped, res.Done = p.Chunks, p.RowsRead, p.Events, p.Dropped, p.Done
	res.Resumed = p.Chunks > 0
	if p.LastKey != nil {
		res.LastKey = *p.LastKey
	}
	if p.Done {
		b.log.Info("backfill already done", "events", p.Events)
		return res, nil
	}
	if res.Resumed {
		b.log.Info("backfill resuming", "after", res.LastKey, "chunks", p.Chunks)
	}
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		var after any
		if p.LastKey != nil {
			after = *p.LastKey
			if p.KeyKind == "int" {
				n, err := strconv.ParseInt(*p.LastKey, 10, 64)
				if err != nil {
					return res, fmt.Errorf("backfill %q: stored key %q: %w", b.job.Name, *p.LastKey, err)
				}
				after = n
			}
		}
		rows, err := b.readChunk(ctx, after)
		if err != nil {
			return res, err
		}
		if len(rows) > 0 && b.opt.OnChunk != nil {
			ids := make([]string, len(rows))
			for i, r := range rows {
				ids[i] = r.id
			}
			b.opt.OnChunk(ctx, ids)
		}
		last := len(rows) < b.job.ChunkSize
		written, dropped, err := b.writeChunk(ctx, rows, &p, last)
		for attempt := 1; err != nil && transient(err) && attempt < 5; attempt++ {
			// A deadlock with a live transaction (the chunk takes many
			// aggregates' locks) or a busy SQLite: wait and write the
			// chunk again; its transaction rolled back whole.
			b.log.Warn("backfill chunk failed; retrying", "error", err, "attempt", attempt)
			select {
			case <-ctx.Done():
				return res, ctx.Err()
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
			written, dropped, err = b.writeChunk(ctx, rows, &p, last)
		}
		if err != nil {
			return res, err
		}
		res.Chunks, res.Rows, res.Events, res.Dropped = p.Chunks, p.RowsRead, p.Events, p.Dropped
		if p.LastKey != nil {
			res.LastKey = *p.LastKey
		}
		if len(rows) > 0 {
			b.log.Debug("backfill chunk", "rows", len(rows), "events", written, "dropped", dropped, "last_key", res.LastKey)
		}
		if last {
			res.Done = true
			b.log.Info("backfill done", "rows", res.Rows, "events", res.Events, "dropped", res.Dropped)
			return res, nil
		}
	}
}

// chunkRow is a row read for the snapshot.
type chunkRow struct {
	id      string // the key as text: the aggregate id
	key     any    // the key as read
	low     *int64 // the low watermark: the aggregate's highest seq
	payload json.RawMessage
}

func quote(name string) string {
	parts := strings.Split(name, ".")
	for i, p := range parts {
		parts[i] = `"` + p + `"`
	}
	return strings.Join(parts, ".")
}

// readChunk reads the next chunk with each row's low watermark, from one
// snapshot.
func (b *run) readChunk(ctx context.Context, after any) ([]chunkRow, error) {
	key := quote(b.job.Key)
	cols := "t.*"
	if len(b.job.Columns) > 0 {
		list := make([]string, 0, len(b.job.Columns)+1)
		hasKey := false
		for _, c := range b.job.Columns {
			list = append(list, "t."+quote(c))
			hasKey = hasKey || c == b.job.Key
		}
		if !hasKey {
			list = append(list, "t."+key)
		}
		cols = strings.Join(list, ", ")
	}
	// The aggregate id is the key as the database renders it, the text
	// verify reports the row's key by, and the low watermark matches it
	// in the same statement.
	id := sqltext.KeyExpr("t." + key)
	q := "SELECT " + cols + ", " + id + " AS " + sqltext.KeyColumn + ", " +
		"(SELECT MAX(o.seq) FROM outbox o WHERE o.aggregatetype = ? AND o.aggregateid = " + id + ") AS cf_backfill_low " +
		"FROM " + quote(b.job.Table) + " t"
	args := []any{b.job.AggregateType}
	if after != nil {
		q += " WHERE t." + key + " > ?"
		args = append(args, after)
	}
	q += " ORDER BY t." + key + " LIMIT ?"
	args = append(args, b.job.ChunkSize)
	rs, err := b.gdb.WithContext(ctx).Raw(q, args...).Rows()
	if err != nil {
		return nil, fmt.Errorf("backfill %q: read %s: %w", b.job.Name, b.job.Table, err)
	}
	defer rs.Close()
	names, err := rs.Columns()
	if err != nil {
		return nil, err
	}
	var out []chunkRow
	for rs.Next() {
		vals := make([]any, len(names))
		ptrs := make([]any, len(names))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("backfill %q: read %s: %w", b.job.Name, b.job.Table, err)
		}
		row := Row{}
		var cr chunkRow
		for i, n := range names {
			switch n {
			case sqltext.KeyColumn:
				cr.id = sqltext.Text(vals[i])
			case "cf_backfill_low":
				if vals[i] != nil {
					v, err := toInt(vals[i])
					if err != nil {
						return nil, fmt.Errorf("backfill %q: watermark: %w", b.job.Name, err)
					}
					cr.low = &v
				}
			default:
				row[n] = normalize(vals[i])
			}
		}
		cr.key = row[b.job.Key]
		if len(b.job.Columns) > 0 && !contains(b.job.Columns, b.job.Key) {
			delete(row, b.job.Key)
		}
		payload, err := b.payload(row)
		if err != nil {
			return nil, fmt.Errorf("backfill %q: row %s: %w", b.job.Name, cr.id, err)
		}
		cr.payload = payload
		out = append(out, cr)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("backfill %q: read %s: %w", b.job.Name, b.job.Table, err)
	}
	return out, nil
}

func (b *run) payload(row Row) (json.RawMessage, error) {
	var v any = row
	if b.opt.Map != nil {
		var err error
		if v, err = b.opt.Map(row); err != nil {
			return nil, err
		}
	} else if len(b.job.Rename) > 0 {
		renamed := make(Row, len(row))
		for k, val := range row {
			if to, ok := b.job.Rename[k]; ok {
				k = to
			}
			renamed[k] = val
		}
		v = renamed
	}
	p, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode payload: %w", err)
	}
	return p, nil
}

// writeChunk writes the chunk's events, drops those whose aggregate had a
// live change since the chunk was read, and records the progress, in one
// transaction.
func (b *run) writeChunk(ctx context.Context, rows []chunkRow, p *progress, last bool) (written, dropped int, err error) {
	next := *p
	err = db.Transact(ctx, b.gdb, func(ctx context.Context) error {
		tx := db.Conn(ctx, b.gdb)
		written, dropped = 0, 0
		if len(rows) > 0 {
			events := make([]changefeed.Event, len(rows))
			ids := make([]string, len(rows))
			for i, r := range rows {
				id, err := uuid.NewV7()
				if err != nil {
					return err
				}
				events[i] = changefeed.Event{
					ID: id, Source: b.job.Source, AggregateType: b.job.AggregateType, AggregateID: r.id,
					Type: b.job.EventType, SchemaVersion: b.job.SchemaVersion, Payload: r.payload,
				}
				ids[i] = id.String()
			}
			if err := outbox.Add(tx, events...); err != nil {
				return err
			}
			// The high watermarks, read under the aggregates' locks.
			high, err := b.watermarks(tx, rows, ids)
			if err != nil {
				return err
			}
			var drop []string
			for i, r := range rows {
				h, ok := high[r.id]
				if ok && (r.low == nil || h > *r.low) {
					drop = append(drop, ids[i])
				}
			}
			if len(drop) > 0 {
				if err := tx.Exec("DELETE FROM outbox WHERE id IN ?", drop).Error; err != nil {
					return fmt.Errorf("drop stale snapshot events: %w", err)
				}
			}
			written, dropped = len(rows)-len(drop), len(drop)
			lastKey := rows[len(rows)-1].id
			next.LastKey = &lastKey
			if _, isInt := rows[len(rows)-1].key.(int64); isInt {
				next.KeyKind = "int"
			} else {
				next.KeyKind = "text"
			}
		}
		res := tx.Exec("UPDATE outbox_backfill SET last_key = ?, key_kind = ?, done = ?, chunks = chunks + 1, rows_read = rows_read + ?, events = events + ?, dropped = dropped + ?, updated_at = CURRENT_TIMESTAMP WHERE name = ? AND chunks = ?",
			next.LastKey, next.KeyKind, last, len(rows), written, dropped, b.job.Name, p.Chunks)
		if res.Error != nil {
			return fmt.Errorf("record progress: %w", res.Error)
		}
		if res.RowsAffected != 1 {
			return ErrConcurrent
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("backfill %q: chunk after %v: %w", b.job.Name, keyOrStart(p.LastKey), err)
	}
	next.Chunks++
	next.RowsRead += int64(len(rows))
	next.Events += int64(written)
	next.Dropped += int64(dropped)
	next.Done = last
	*p = next
	return written, dropped, nil
}

// watermarks returns, per aggregate id of rows, the highest outbox seq of an
// event other than the chunk's own.
func (b *run) watermarks(tx *gorm.DB, rows []chunkRow, own []string) (map[string]int64, error) {
	aggIDs := make([]string, len(rows))
	for i, r := range rows {
		aggIDs[i] = r.id
	}
	sort.Strings(aggIDs)
	var list []struct {
		Aggregateid string
		High        int64
	}
	err := tx.Raw("SELECT aggregateid, MAX(seq) AS high FROM outbox WHERE aggregatetype = ? AND aggregateid IN ? AND id NOT IN ? GROUP BY aggregateid",
		b.job.AggregateType, aggIDs, own).Scan(&list).Error
	if err != nil {
		return nil, fmt.Errorf("high watermarks: %w", err)
	}
	out := make(map[string]int64, len(list))
	for _, w := range list {
		out[w.Aggregateid] = w.High
	}
	return out, nil
}

// transient reports errors that a retry of the chunk can cure: a deadlock
// or serialization failure on Postgres, a busy database on SQLite.
func transient(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40P01" || pgErr.Code == "40001"
	}
	return strings.Contains(err.Error(), "database is locked")
}

func keyOrStart(k *string) string {
	if k == nil {
		return "the start"
	}
	return *k
}

// normalize makes driver values JSON-friendly: bytes become text, times
// RFC 3339 in UTC.
func normalize(v any) any {
	switch x := v.(type) {
	case []byte:
		return string(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	}
	return v
}

func toInt(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case int32:
		return int64(x), nil
	case int:
		return int64(x), nil
	case float64:
		return int64(x), nil
	case string:
		return strconv.ParseInt(x, 10, 64)
	case []byte:
		return strconv.ParseInt(string(x), 10, 64)
	}
	return 0, fmt.Errorf("unexpected %T %v", v, v)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Config is the "backfill" section of the config: the jobs that
// `strangler backfill NAME` runs.
type Config struct {
	// Jobs are the named backfills.
	Jobs []Job `yaml:"jobs"`
}

// SetDefaults fills each job's empty fields.
func (c *Config) SetDefaults(string) {
	for i := range c.Jobs {
		c.Jobs[i].SetDefaults()
	}
}

// Validate reports every invalid job field, as jobs[i].field.
func (c Config) Validate() error {
	var errs []error
	seen := map[string]bool{}
	for i, j := range c.Jobs {
		if err := j.Validate(); err != nil {
			for _, e := range flatten(err) {
				errs = append(errs, fmt.Errorf("jobs[%d].%s", i, e))
			}
		}
		if seen[j.Name] {
			errs = append(errs, fmt.Errorf("jobs[%d].name: %q is used twice", i, j.Name))
		}
		seen[j.Name] = true
	}
	return errors.Join(errs...)
}

// Job returns the job named name.
func (c Config) Job(name string) (Job, bool) {
	for _, j := range c.Jobs {
		if j.Name == name {
			return j, true
		}
	}
	return Job{}, false
}

func flatten(err error) []string {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []string{err.Error()}
}
