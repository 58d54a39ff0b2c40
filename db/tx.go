package db

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"gorm.io/gorm"
)

// txKey keys the transaction that Transact puts in a context.
type txKey struct{}

// txState is what Transact puts in a context: the transaction, and the
// batches of rows queued in it (see Batch), which it writes before the
// commit in the order they got their first row.
type txState struct {
	tx      *gorm.DB
	queued  map[any]*queued
	flushes []*queued
}

// queued is one Batch's rows in one transaction: n of them, which flush
// writes and takes off the queue, or, for a Batch with Values, take takes
// off the queue as an INSERT for flush to write with the others.
type queued struct {
	n     int
	add   func(rows any) // rows is a []T
	rows  func() any     // the []T queued
	flush func(ctx context.Context) error
	take  func() Insert
	// fail, if not nil, is the Batch's Err on the rows take took last.
	fail func(err error) error
	// last is the Batch's Last.
	last bool
}

func stateOf(ctx context.Context) (*txState, bool) {
	st, ok := ctx.Value(txKey{}).(*txState)
	return st, ok
}

// Conn returns the transaction that ctx carries, or gdb bound to ctx when it
// carries none (and, in a fn of Together, the first query's gathering). Module stores call it for every statement, so that a caller
// higher up can make several modules' writes one unit of work without the
// modules' APIs taking a *gorm.DB.
func Conn(ctx context.Context, gdb *gorm.DB) *gorm.DB {
	if st, ok := stateOf(ctx); ok {
		return st.tx
	}
	tx := gdb.WithContext(ctx)
	if p, ok := participantPool(ctx, gdb); ok {
		tx.Statement.ConnPool = p
	}
	return tx
}

// InTx reports whether ctx carries a transaction.
func InTx(ctx context.Context) bool {
	_, ok := stateOf(ctx)
	return ok
}

// Transact runs fn in a transaction and commits it when fn returns nil,
// after it has written the rows queued in the transaction's batches (see
// Batch); an error from a batch rolls the transaction back and is
// returned. When ctx already carries a transaction, fn joins it and the
// outermost Transact decides. On SQLite, write transactions queue
// in-process for the single write lock, and every checkpointEvery commits
// start a checkpoint in the background (see sqlitePool).
func Transact(ctx context.Context, gdb *gorm.DB, fn func(ctx context.Context) error) (err error) {
	if InTx(ctx) {
		return fn(ctx)
	}
	pipelined := false
	if sqlDB, dbErr := gdb.DB(); dbErr == nil {
		_, pipelined = pgPools.Load(sqlDB)
		if v, ok := sqlitePools.Load(sqlDB); ok {
			lite := v.(*sqlitePool)
			select {
			case lite.sem <- struct{}{}:
			case <-ctx.Done():
				return fmt.Errorf("wait for write lock: %w", ctx.Err())
			}
			defer func() {
				<-lite.sem
				if err == nil {
					lite.committed()
				}
			}()
		}
	}
	return gdb.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		st := &txState{tx: tx}
		txCtx := context.WithValue(ctx, txKey{}, st)
		if err := fn(txCtx); err != nil {
			return err
		}
		return st.flush(txCtx, pipelined)
	})
}

// flush writes every batch's queued rows, again until none are left, since
// a flush may queue rows in another batch. The INSERTs of the batches with
// Values go together (see WriteInserts), as late as the batches with a
// Flush in between allow, so that they keep their order. If commit, the
// last statement carries the transaction's COMMIT (see commitAfter): the
// statement of a round in which no Flush ran, since only a Flush can queue
// more rows.
func (st *txState) flush(ctx context.Context, commit bool) error {
	for more := true; more; {
		more = false
		flushed := false
		var (
			inserts []Insert
			took    []*queued
			lasts   []*queued
		)
		for _, q := range st.flushes {
			if q.n == 0 {
				continue
			}
			more = true
			if q.last {
				lasts = append(lasts, q)
				continue
			}
			q.n = 0
			if q.take != nil {
				inserts = append(inserts, q.take())
				took = append(took, q)
				continue
			}
			if err := WriteInserts(st.tx, inserts...); err != nil {
				return failed(err, took)
			}
			inserts, took = nil, nil
			flushed = true
			if err := q.flush(ctx); err != nil {
				return err
			}
		}
		for _, q := range lasts {
			q.n = 0
			inserts = append(inserts, q.take())
			took = append(took, q)
		}
		if err := writeInserts(st.tx, commit && !flushed, inserts...); err != nil {
			return failed(err, took)
		}
	}
	return nil
}

// failed is err of the INSERTs of the batches took, as their Errs make it.
func failed(err error, took []*queued) error {
	for _, q := range took {
		if q.fail != nil {
			err = q.fail(err)
		}
	}
	return err
}

// Batch queues rows of one kind that a transaction writes at its end, all
// in one statement, where writing each as it comes would cost a round trip
// to the database apiece: an order's journal lines and outbox events. The
// rows are written inside the transaction, before its commit, so they commit
// or roll back with it; they are not visible to the transaction's own
// queries before then, so a Batch suits rows the transaction writes and
// does not read back. Declare one Batch per kind, as a package variable or
// a field that lives as long as the pool.
//
// A Batch that only inserts its rows gives Table, Columns and Values in
// place of Flush: the commit then writes the rows of every such batch of
// the transaction together, on Postgres in one statement (see
// WriteInserts), where a Flush apiece would cost a round trip apiece.
type Batch[T any] struct {
	// Flush writes the rows queued in one transaction, in the order they
	// were added; ctx carries the transaction (use Conn). It is not called
	// when Values is set.
	Flush func(ctx context.Context, rows []T) error
	// Table is the table that a Batch with Values inserts its rows into.
	Table string
	// Columns are the columns of Table that Values gives.
	Columns []string
	// Values, if not nil, returns a row's values, one per column, and the
	// commit inserts the rows itself.
	Values func(row T) []any
	// Err, if not nil, gives the error that the transaction returns when
	// the statement that inserts rows (with Values) fails, as err may come
	// from another batch's rows of the same statement: it returns err
	// itself unless it knows the failure as its own, such as a conflict
	// on its table's key. If nil, err is returned.
	Err func(err error, rows []T) error
	// Last, for a batch with Values, makes the commit write its rows
	// after those of every other batch, in the statement that carries the
	// COMMIT when no Flush runs in its round: for rows whose trigger takes
	// a lock that many transactions wait for, so that the transaction
	// takes it last and holds it for the commit alone.
	Last bool
}

// ErrNoTransaction is returned by Batch.Add when its context carries no
// transaction, whose commit would write the rows.
var ErrNoTransaction = errors.New("db: rows can only be queued in a transaction (db.Transact)")

// Add queues rows in the transaction that ctx carries, to be written by
// Flush before it commits.
func (b *Batch[T]) Add(ctx context.Context, rows ...T) error {
	st, ok := stateOf(ctx)
	if !ok {
		return ErrNoTransaction
	}
	if len(rows) == 0 {
		return nil
	}
	q, ok := st.queued[b]
	if !ok {
		var pending []T
		q = &queued{}
		q.flush = func(ctx context.Context) error {
			out := pending
			pending = nil
			return b.Flush(ctx, out)
		}
		q.add = func(rows any) { pending = append(pending, rows.([]T)...) }
		q.rows = func() any { return pending }
		if b.Values != nil {
			var took []T
			q.take = func() Insert {
				in := Insert{Table: b.Table, Columns: b.Columns, Rows: make([][]any, len(pending))}
				for i, r := range pending {
					in.Rows[i] = b.Values(r)
				}
				took, pending = pending, nil
				return in
			}
			if b.Err != nil {
				q.fail = func(err error) error { return b.Err(err, took) }
			}
		}
		q.last = b.Last && b.Values != nil
		if st.queued == nil {
			st.queued = map[any]*queued{}
		}
		st.queued[b] = q
		st.flushes = append(st.flushes, q)
	}
	q.add(rows)
	q.n += len(rows)
	return nil
}

// Queued returns the rows queued in the transaction that ctx carries and
// not written yet, in the order they were added, so that the transaction
// can read its own rows before its commit writes them; none outside a
// transaction. The caller must not change them.
func (b *Batch[T]) Queued(ctx context.Context) []T {
	st, ok := stateOf(ctx)
	if !ok {
		return nil
	}
	q, ok := st.queued[b]
	if !ok || q.n == 0 {
		return nil
	}
	return q.rows().([]T)
}

// withoutSearchPath returns the URL without its search_path parameter.
func withoutSearchPath(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadDSN, redactURLError(err))
	}
	q := u.Query()
	q.Del("search_path")
	u.RawQuery = q.Encode()
	return u.String(), nil
}
