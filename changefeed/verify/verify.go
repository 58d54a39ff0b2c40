// Package verify compares a source table with a target table through a
// mapping and finds the keys that differ: the check that a service's copy of
// a module's data has not drifted from the monolith's.
//
// Compare counts both tables, then reads each side once in key order, in
// pages, and reduces every row to its key and a 64-bit hash of its mapped,
// normalised values; rows are not kept. It splits the union of the keys into
// ranges and compares the two sides' checksums (row count and sum of
// hashes) per range; a range that differs is bisected, checksum by
// checksum, down to the keys that differ. It then reads those rows again to
// report which columns differ.
//
// On live tables a row written between the two sides' reads, or a change
// still on its way through the sync, differs for a moment. With
// Options.Recheck, Compare reads the differing keys again, a little later
// and a few times, and counts a key that matches on one of those reads, or
// whose target has taken a state its source had (the sync delivering behind
// a row that keeps changing), as settled rather than as drift; a row that
// really drifted differs on every read. Verify can then run under traffic.
//
// The hashing happens in the verifier rather than in SQL so that a mapping
// written in Go (key translations, transforms) applies, and so that SQLite
// and Postgres compare alike. It costs one read of each table and about 50
// bytes of memory per row.
package verify

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/changefeed/internal/sqltext"
	"github.com/stranglerkit/strangler/db"
)

// Side is one of the two tables.
type Side struct {
	// DB holds the table.
	DB *gorm.DB
	// Table is the table, optionally schema-qualified.
	Table string
	// Key is its key column. If empty, "id".
	Key string
}

// Options tune Compare.
type Options struct {
	// RangeSize is the number of keys per top-level range. If zero, 1000.
	RangeSize int
	// Limit caps the keys listed per kind of difference. If zero, 100.
	Limit int
	// PageSize is the rows read per query. If zero, 5000.
	PageSize int
	// Logger receives progress. If nil, nothing is logged.
	Logger *slog.Logger
	// Recheck, when positive, is the wait before each re-read of the keys
	// that differ after the scan; a key that matches on a re-read is
	// settled, not drift. If zero, the scan's differences are the result.
	// With more than 10,000 differing keys there is no recheck.
	Recheck time.Duration
	// RecheckRounds is the number of re-reads. If zero, 5.
	RecheckRounds int
}

// recheckMax caps the keys that are read again: more differences than that
// are not rows in flight.
const recheckMax = 10000

// Change is a key whose row differs, with the columns that do.
type Change struct {
	Key     string       `json:"key"`
	Columns []ColumnDiff `json:"columns"`
}

// ColumnDiff is one differing column: the source value after the mapping,
// and the target value, both in their compared form.
type ColumnDiff struct {
	Column string `json:"column"`
	Source string `json:"source"`
	Target string `json:"target"`
}

// KeyError is a source row that the mapping could not map.
type KeyError struct {
	Key   string `json:"key"`
	Error string `json:"error"`
}

// Range is a top-level key range whose checksums differ.
type Range struct {
	First       string `json:"first"`
	Last        string `json:"last"`
	SourceRows  int    `json:"source_rows"`
	TargetRows  int    `json:"target_rows"`
	Differences int    `json:"differences"`
}

// Report is the outcome of a comparison.
type Report struct {
	Source     string `json:"source"`
	Target     string `json:"target"`
	SourceRows int64  `json:"source_rows"`
	TargetRows int64  `json:"target_rows"`
	// Columns are the compared target columns.
	Columns []string `json:"columns"`
	// Ranges is the number of top-level key ranges; DifferingRanges lists
	// those whose checksums differ.
	Ranges          int     `json:"ranges"`
	DifferingRanges []Range `json:"differing_ranges"`
	// Checksums counts the range checksums compared, bisection included.
	Checksums int `json:"checksums"`
	// Missing are keys in the source and not in the target; Extra the
	// reverse; Changed keys in both whose rows differ. Each list holds at
	// most Options.Limit keys; the counts are complete.
	Missing      []string   `json:"missing"`
	MissingCount int        `json:"missing_count"`
	Extra        []string   `json:"extra"`
	ExtraCount   int        `json:"extra_count"`
	Changed      []Change   `json:"changed"`
	ChangedCount int        `json:"changed_count"`
	Errors       []KeyError `json:"errors"`
	ErrorCount   int        `json:"error_count"`
	// Rechecks is the number of re-reads of the differing keys, and Settled
	// the keys that differed in the scan and matched on a re-read: rows in
	// flight, not drift. The lists and counts above are what still
	// differed on the last read.
	Rechecks int `json:"rechecks"`
	Settled  int `json:"settled"`
	// Drift is true when anything differs: with rechecks, a key that still
	// differs or a source row that cannot be mapped; without, also a
	// difference in the row counts.
	Drift    bool    `json:"drift"`
	Duration float64 `json:"duration_seconds"`
}

var tableRef = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]{0,62}\.)?[A-Za-z_][A-Za-z0-9_]{0,62}$`)
var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

func (s *Side) validate(name string) error {
	var errs []error
	if s.DB == nil {
		errs = append(errs, fmt.Errorf("%s: no database", name))
	}
	if s.Key == "" {
		s.Key = "id"
	}
	if !tableRef.MatchString(s.Table) {
		errs = append(errs, fmt.Errorf("%s.table: %q is not a plain (optionally schema-qualified) table name", name, s.Table))
	}
	if !identifier.MatchString(s.Key) {
		errs = append(errs, fmt.Errorf("%s.key: %q is not a plain column name", name, s.Key))
	}
	return errors.Join(errs...)
}

// entry is one row reduced to its key and hash.
type entry struct {
	// key is the key as text; for a source row, the target key it maps to.
	key string
	// own is the key as text on the entry's own side.
	own   string
	num   int64
	isNum bool
	hash  uint64
	// raw is the key as the side's driver returned it, to query by.
	raw any
}

func less(a, b *entry) bool {
	if a.isNum && b.isNum {
		return a.num < b.num
	}
	if a.isNum != b.isNum {
		return a.isNum
	}
	return a.key < b.key
}

// Compare compares src with dst through m.
func Compare(ctx context.Context, src, dst Side, m Mapping, opt Options) (*Report, error) {
	start := time.Now()
	if opt.RangeSize <= 0 {
		opt.RangeSize = 1000
	}
	if opt.Limit <= 0 {
		opt.Limit = 100
	}
	if opt.PageSize <= 0 {
		opt.PageSize = 5000
	}
	if opt.RecheckRounds <= 0 {
		opt.RecheckRounds = 5
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := errors.Join(src.validate("source"), dst.validate("target")); err != nil {
		return nil, err
	}
	for i, c := range m.Columns {
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("columns[%d]: %w", i, err)
		}
		if !identifier.MatchString(c.Target) || (m.Row == nil && !identifier.MatchString(c.source())) {
			return nil, fmt.Errorf("columns[%d]: %q/%q: not plain column names", i, c.Target, c.Source)
		}
	}
	if m.KeyFormat != "" && strings.Count(m.KeyFormat, "%s") != 1 {
		return nil, fmt.Errorf("key format %q: want exactly one %%s", m.KeyFormat)
	}
	cols := m.Columns
	if len(cols) == 0 {
		names, err := columnsOf(ctx, dst)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			if n != dst.Key {
				cols = append(cols, Column{Target: n})
			}
		}
	}
	rep := &Report{Source: src.Table, Target: dst.Table}
	for _, c := range cols {
		rep.Columns = append(rep.Columns, c.Target)
	}
	var err error
	if rep.SourceRows, err = count(ctx, src); err != nil {
		return nil, err
	}
	if rep.TargetRows, err = count(ctx, dst); err != nil {
		return nil, err
	}
	log.Info("verify counted", "source", rep.SourceRows, "target", rep.TargetRows)

	c := &comparison{src: src, dst: dst, m: m, cols: cols, opt: opt, rep: rep}
	srcEntries, err := c.scan(ctx, src, true)
	if err != nil {
		return nil, err
	}
	dstEntries, err := c.scan(ctx, dst, false)
	if err != nil {
		return nil, err
	}
	sort.Slice(srcEntries, func(i, j int) bool { return less(&srcEntries[i], &srcEntries[j]) })
	sort.Slice(dstEntries, func(i, j int) bool { return less(&dstEntries[i], &dstEntries[j]) })
	if err := c.checkDuplicates(srcEntries); err != nil {
		return nil, err
	}
	c.merge(srcEntries, dstEntries)
	diffs := c.bisectAll()
	if opt.Recheck > 0 && len(diffs) > 0 && len(diffs) <= recheckMax {
		log.Info("verify rechecks", "keys", len(diffs), "after", opt.Recheck)
		if diffs, err = c.recheck(ctx, diffs); err != nil {
			return nil, err
		}
	}
	changed := c.tally(diffs)
	if err := c.describe(ctx, changed); err != nil {
		return nil, err
	}
	// A scan sees every key of both sides, so on live tables (Recheck) a
	// difference in the counts alone is rows written between count and
	// scan.
	countsDiffer := rep.SourceRows != rep.TargetRows && opt.Recheck <= 0
	rep.Drift = rep.MissingCount+rep.ExtraCount+rep.ChangedCount+rep.ErrorCount > 0 || countsDiffer
	rep.Duration = time.Since(start).Seconds()
	log.Info("verify done", "drift", rep.Drift, "missing", rep.MissingCount, "extra", rep.ExtraCount, "changed", rep.ChangedCount, "settled", rep.Settled)
	return rep, nil
}

type comparison struct {
	src, dst Side
	m        Mapping
	cols     []Column
	opt      Options
	rep      *Report

	// union holds every key of either side, in order.
	union []slot
}

// slot is one key of the union with each side's row, if it has one.
type slot struct {
	src, dst *entry
}

func (s *slot) key() string {
	if s.src != nil {
		return s.src.key
	}
	return s.dst.key
}

func quote(name string) string {
	parts := strings.Split(name, ".")
	for i, p := range parts {
		parts[i] = `"` + p + `"`
	}
	return strings.Join(parts, ".")
}

func columnsOf(ctx context.Context, s Side) ([]string, error) {
	rs, err := s.DB.WithContext(ctx).Raw("SELECT * FROM " + quote(s.Table) + " WHERE 1 = 0").Rows()
	if err != nil {
		return nil, fmt.Errorf("columns of %s: %w", s.Table, err)
	}
	defer rs.Close()
	return rs.Columns()
}

func count(ctx context.Context, s Side) (int64, error) {
	var n int64
	if err := s.DB.WithContext(ctx).Raw("SELECT COUNT(*) FROM " + quote(s.Table)).Scan(&n).Error; err != nil {
		return 0, fmt.Errorf("count %s: %w", s.Table, err)
	}
	return n, nil
}

// selectList returns the columns to read from a side: the key, then the
// compared columns.
func (c *comparison) selectList(s Side, source bool) ([]string, error) {
	list := []string{s.Key}
	if source && c.m.Row != nil {
		return nil, nil // the Row mapping needs every column
	}
	for _, col := range c.cols {
		name := col.Target
		if source {
			name = col.source()
		}
		list = append(list, name)
	}
	return list, nil
}

// scan reads a side in key order, page by page, and reduces each row to an
// entry.
func (c *comparison) scan(ctx context.Context, s Side, source bool) ([]entry, error) {
	list, err := c.selectList(s, source)
	if err != nil {
		return nil, err
	}
	sel := "*"
	if list != nil {
		q := make([]string, len(list))
		for i, n := range list {
			q[i] = quote(n)
		}
		sel = strings.Join(q, ", ")
	}
	sel += ", " + keySelect(s)
	var out []entry
	var after any
	for {
		q := "SELECT " + sel + " FROM " + quote(s.Table)
		args := []any{}
		if after != nil {
			q += " WHERE " + quote(s.Key) + " > ?"
			args = append(args, after)
		}
		q += " ORDER BY " + quote(s.Key) + " LIMIT ?"
		args = append(args, c.opt.PageSize)
		n, last, err := c.page(ctx, s, source, q, args, &out)
		if err != nil {
			return nil, err
		}
		if n < c.opt.PageSize {
			return out, nil
		}
		after = last
	}
}

func (c *comparison) page(ctx context.Context, s Side, source bool, q string, args []any, out *[]entry) (int, any, error) {
	rs, err := s.DB.WithContext(ctx).Raw(q, args...).Rows()
	if err != nil {
		return 0, nil, fmt.Errorf("read %s: %w", s.Table, err)
	}
	defer rs.Close()
	names, err := rs.Columns()
	if err != nil {
		return 0, nil, err
	}
	n := 0
	var last any
	for rs.Next() {
		vals := make([]any, len(names))
		ptrs := make([]any, len(names))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			return 0, nil, fmt.Errorf("read %s: %w", s.Table, err)
		}
		row := make(Row, len(names))
		for i, name := range names {
			if b, ok := vals[i].([]byte); ok {
				vals[i] = string(b)
			}
			row[name] = vals[i]
		}
		n++
		last = row[s.Key]
		key := takeKey(row)
		e, err := c.reduce(row, key, s, source)
		if err != nil {
			c.rep.ErrorCount++
			if len(c.rep.Errors) < c.opt.Limit {
				c.rep.Errors = append(c.rep.Errors, KeyError{Key: key, Error: err.Error()})
			}
			continue
		}
		*out = append(*out, e)
	}
	if err := rs.Err(); err != nil {
		return 0, nil, fmt.Errorf("read %s: %w", s.Table, err)
	}
	return n, last, nil
}

// values maps a row to the compared columns' canonical values.
func (c *comparison) values(row Row, source bool) ([]string, error) {
	if source && c.m.Row != nil {
		mapped, err := c.m.Row(row)
		if err != nil {
			return nil, err
		}
		row = mapped
	}
	out := make([]string, len(c.cols))
	for i, col := range c.cols {
		var v any
		if source && c.m.Row == nil {
			var err error
			if v, err = col.transform(row[col.source()]); err != nil {
				return nil, fmt.Errorf("column %s: %w", col.source(), err)
			}
		} else {
			var ok bool
			if v, ok = row[col.Target]; !ok && source {
				return nil, fmt.Errorf("the row mapping gave no %s", col.Target)
			}
		}
		s, err := canonical(v, col.Type)
		if err != nil {
			side := "target"
			if source {
				side = "source"
			}
			return nil, fmt.Errorf("%s column %s: %w", side, col.Target, err)
		}
		out[i] = s
	}
	return out, nil
}

func (c *comparison) targetKey(srcKey string) (string, error) {
	switch {
	case c.m.Key != nil:
		return c.m.Key(srcKey)
	case c.m.KeyFormat != "":
		return strings.Replace(c.m.KeyFormat, "%s", srcKey, 1), nil
	}
	return srcKey, nil
}

// keySelect is the select list item that reads a side's key as text: as the
// database renders it, which is how backfill names the row's aggregate.
func keySelect(s Side) string {
	return sqltext.KeyExpr(quote(s.Key)) + " AS " + sqltext.KeyColumn
}

// takeKey removes the key text that keySelect read from row and returns it.
func takeKey(row Row) string {
	k := sqltext.Text(row[sqltext.KeyColumn])
	delete(row, sqltext.KeyColumn)
	return k
}

// reduce turns a row whose key reads key into an entry.
func (c *comparison) reduce(row Row, key string, s Side, source bool) (entry, error) {
	e := entry{key: key, own: key, raw: row[s.Key]}
	if source {
		tk, err := c.targetKey(key)
		if err != nil {
			return e, fmt.Errorf("key: %w", err)
		}
		e.key = tk
	}
	if n, err := strconv.ParseInt(e.key, 10, 64); err == nil {
		e.num, e.isNum = n, true
	}
	vals, err := c.values(row, source)
	if err != nil {
		return e, err
	}
	e.hash = rowHash(e.key, vals)
	return e, nil
}

// rowHash hashes a key with its values; the key is part of it so that equal
// rows under different keys do not cancel out in a range's sum.
func rowHash(key string, vals []string) uint64 {
	h := fnv.New64a()
	var lenBuf [8]byte
	write := func(s string) {
		binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(s)))
		h.Write(lenBuf[:])
		h.Write([]byte(s))
	}
	write(key)
	for _, v := range vals {
		write(v)
	}
	return h.Sum64()
}

func (c *comparison) checkDuplicates(src []entry) error {
	for i := 1; i < len(src); i++ {
		if src[i].key == src[i-1].key {
			return fmt.Errorf("source keys %s and %s both map to target key %s", src[i-1].own, src[i].own, src[i].key)
		}
	}
	return nil
}

// merge builds the union of both sides' keys.
func (c *comparison) merge(src, dst []entry) {
	i, j := 0, 0
	for i < len(src) || j < len(dst) {
		switch {
		case j >= len(dst) || (i < len(src) && less(&src[i], &dst[j])):
			c.union = append(c.union, slot{src: &src[i]})
			i++
		case i >= len(src) || less(&dst[j], &src[i]):
			c.union = append(c.union, slot{dst: &dst[j]})
			j++
		default:
			c.union = append(c.union, slot{src: &src[i], dst: &dst[j]})
			i++
			j++
		}
	}
}

type checksum struct {
	rows int
	sum  uint64
}

func (c *comparison) checksums(lo, hi int) (s, d checksum) {
	for _, sl := range c.union[lo:hi] {
		if sl.src != nil {
			s.rows++
			s.sum += sl.src.hash
		}
		if sl.dst != nil {
			d.rows++
			d.sum += sl.dst.hash
		}
	}
	return s, d
}

// diff is a key that differs, with the index of its top-level range in
// Report.DifferingRanges.
type diff struct {
	sl  *slot
	rng int
}

// bisectAll compares every top-level range and bisects those that differ.
// It returns the keys that differ.
func (c *comparison) bisectAll() []diff {
	var diffs []diff
	for lo := 0; lo < len(c.union); lo += c.opt.RangeSize {
		hi := min(lo+c.opt.RangeSize, len(c.union))
		c.rep.Ranges++
		s, d := c.checksums(lo, hi)
		c.rep.Checksums++
		if s == d {
			continue
		}
		rng := len(c.rep.DifferingRanges)
		c.rep.DifferingRanges = append(c.rep.DifferingRanges, Range{
			First: c.union[lo].key(), Last: c.union[hi-1].key(), SourceRows: s.rows, TargetRows: d.rows,
		})
		diffs = c.bisect(lo, hi, rng, diffs)
	}
	return diffs
}

func (c *comparison) bisect(lo, hi, rng int, diffs []diff) []diff {
	if hi-lo == 1 {
		return append(diffs, diff{sl: &c.union[lo], rng: rng})
	}
	mid := lo + (hi-lo)/2
	for _, r := range [][2]int{{lo, mid}, {mid, hi}} {
		s, d := c.checksums(r[0], r[1])
		c.rep.Checksums++
		if s != d {
			diffs = c.bisect(r[0], r[1], rng, diffs)
		}
	}
	return diffs
}

// tally fills the report's lists and counts from the keys that differ,
// drops the ranges none of which still differ, and returns the changed
// keys' slots.
func (c *comparison) tally(diffs []diff) []*slot {
	var changed []*slot
	per := make([]int, len(c.rep.DifferingRanges))
	for _, d := range diffs {
		per[d.rng]++
		sl := d.sl
		switch {
		case sl.dst == nil:
			c.rep.MissingCount++
			if len(c.rep.Missing) < c.opt.Limit {
				c.rep.Missing = append(c.rep.Missing, sl.key())
			}
		case sl.src == nil:
			c.rep.ExtraCount++
			if len(c.rep.Extra) < c.opt.Limit {
				c.rep.Extra = append(c.rep.Extra, sl.key())
			}
		default:
			changed = append(changed, sl)
		}
	}
	c.rep.ChangedCount = len(changed)
	ranges := c.rep.DifferingRanges[:0]
	for i, r := range c.rep.DifferingRanges {
		if per[i] > 0 {
			r.Differences = per[i]
			ranges = append(ranges, r)
		}
	}
	c.rep.DifferingRanges = ranges
	return changed
}

// recheck reads the differing keys again, up to RecheckRounds times after
// a wait of Recheck each, and returns those that still differ, with their
// slots updated to what was read last. A key whose source row cannot be
// named (a target-only key under a Key mapping without inverse) is
// settled only when its target row is gone.
//
// A key also settles when its target row has become one that its source
// row was, at the scan or an earlier read: the sync is delivering, behind
// a row that changes faster than it lags (a hot stock level under load),
// which would otherwise differ on every read. A target that does not move
// never matches a state the source took after the scan.
func (c *comparison) recheck(ctx context.Context, diffs []diff) ([]diff, error) {
	// was holds, per key, the hashes of the source rows read so far.
	was := map[string][]uint64{}
	for _, d := range diffs {
		if d.sl.src != nil {
			was[d.sl.key()] = []uint64{d.sl.src.hash}
		}
	}
	t := time.NewTimer(c.opt.Recheck)
	defer t.Stop()
	for round := 0; round < c.opt.RecheckRounds && len(diffs) > 0; round++ {
		if round > 0 {
			t.Reset(c.opt.Recheck)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
		c.rep.Rechecks++
		var srcKeys, dstKeys []any
		for _, d := range diffs {
			if k, ok := c.sourceKeyOf(d.sl); ok {
				srcKeys = append(srcKeys, k)
			}
			dstKeys = append(dstKeys, c.targetKeyOf(d.sl))
		}
		srcRows, err := c.entries(ctx, c.src, srcKeys, true)
		if err != nil {
			return nil, err
		}
		dstRows, err := c.entries(ctx, c.dst, dstKeys, false)
		if err != nil {
			return nil, err
		}
		kept := diffs[:0]
		for _, d := range diffs {
			k := d.sl.key()
			s, hasS := srcRows[k]
			if _, ok := c.sourceKeyOf(d.sl); !ok {
				s, hasS = d.sl.src, d.sl.src != nil
			}
			t, hasT := dstRows[k]
			if hasS {
				was[k] = append(was[k], s.hash)
			}
			if hasS == hasT && (!hasS || s.hash == t.hash) || hasT && slices.Contains(was[k], t.hash) {
				c.rep.Settled++
				continue
			}
			d.sl.src, d.sl.dst = s, t
			kept = append(kept, d)
		}
		diffs = kept
	}
	return diffs, nil
}

// sourceKeyOf is the source key to read a slot's source row by: the one the
// scan saw, or the target key mapped back through KeyFormat or identity.
func (c *comparison) sourceKeyOf(sl *slot) (any, bool) {
	if sl.src != nil {
		return sl.src.raw, true
	}
	switch {
	case c.m.Key != nil:
		return nil, false
	case c.m.KeyFormat != "":
		pre, suf, _ := strings.Cut(c.m.KeyFormat, "%s")
		k := sl.dst.key
		if !strings.HasPrefix(k, pre) || !strings.HasSuffix(k, suf) || len(k) < len(pre)+len(suf) {
			return nil, false
		}
		return k[len(pre) : len(k)-len(suf)], true
	}
	return sl.dst.raw, true
}

// targetKeyOf is the target key to read a slot's target row by.
func (c *comparison) targetKeyOf(sl *slot) any {
	if sl.dst != nil {
		return sl.dst.raw
	}
	return sl.src.key
}

// entries reads rows by key and reduces them to entries by target key. A
// row that cannot be mapped is left out, so its key keeps differing.
func (c *comparison) entries(ctx context.Context, s Side, keys []any, source bool) (map[string]*entry, error) {
	out := map[string]*entry{}
	for len(keys) > 0 {
		batch := keys[:min(len(keys), 1000)]
		keys = keys[len(batch):]
		err := c.rows(ctx, s, batch, func(key string, row Row) {
			if e, err := c.reduce(row, key, s, source); err == nil {
				out[e.key] = &e
			}
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// describe reads the changed rows again and lists their differing columns.
func (c *comparison) describe(ctx context.Context, changed []*slot) error {
	if len(changed) > c.opt.Limit {
		changed = changed[:c.opt.Limit]
	}
	if len(changed) == 0 {
		return nil
	}
	srcKeys := make([]any, len(changed))
	dstKeys := make([]any, len(changed))
	for i, sl := range changed {
		srcKeys[i] = sl.src.raw
		dstKeys[i] = sl.dst.raw
	}
	srcRows, err := c.fetch(ctx, c.src, srcKeys, true)
	if err != nil {
		return err
	}
	dstRows, err := c.fetch(ctx, c.dst, dstKeys, false)
	if err != nil {
		return err
	}
	for _, sl := range changed {
		ch := Change{Key: sl.key()}
		sv, dv := srcRows[sl.src.own], dstRows[sl.dst.own]
		for i, col := range c.cols {
			if i < len(sv) && i < len(dv) && sv[i] != dv[i] {
				ch.Columns = append(ch.Columns, ColumnDiff{Column: col.Target, Source: display(sv[i]), Target: display(dv[i])})
			}
		}
		c.rep.Changed = append(c.rep.Changed, ch)
	}
	return nil
}

func display(s string) string {
	if s == "\x00null" {
		return "NULL"
	}
	return s
}

// fetch reads rows by key and returns their canonical values by key text.
func (c *comparison) fetch(ctx context.Context, s Side, keys []any, source bool) (map[string][]string, error) {
	out := map[string][]string{}
	err := c.rows(ctx, s, keys, func(key string, row Row) {
		if v, err := c.values(row, source); err == nil {
			out[key] = v
		}
	})
	return out, err
}

// rows reads the rows of keys from a side and calls fn with each and its key
// as text.
func (c *comparison) rows(ctx context.Context, s Side, keys []any, fn func(key string, row Row)) error {
	rs, err := s.DB.WithContext(ctx).Raw("SELECT *, "+keySelect(s)+" FROM "+quote(s.Table)+" WHERE "+quote(s.Key)+" IN ?", keys).Rows()
	if err != nil {
		return fmt.Errorf("read %s: %w", s.Table, err)
	}
	defer rs.Close()
	names, err := rs.Columns()
	if err != nil {
		return err
	}
	for rs.Next() {
		vals := make([]any, len(names))
		ptrs := make([]any, len(names))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			return err
		}
		row := make(Row, len(names))
		for i, n := range names {
			if b, ok := vals[i].([]byte); ok {
				vals[i] = string(b)
			}
			row[n] = vals[i]
		}
		fn(takeKey(row), row)
	}
	return rs.Err()
}

// Describe names a side for reports: its table and redacted database.
func Describe(dsn, table string) string {
	return table + " in " + db.Redact(dsn)
}
