package db

import (
	"context"
	"fmt"
	"net/url"

	"gorm.io/gorm"
)

// txKey keys the transaction that Transact puts in a context.
type txKey struct{}

// Conn returns the transaction that ctx carries, or gdb bound to ctx when it
// carries none. Module stores call it for every statement, so that a caller
// higher up can make several modules' writes one unit of work without the
// modules' APIs taking a *gorm.DB.
func Conn(ctx context.Context, gdb *gorm.DB) *gorm.DB {
	if tx, ok := ctx.Value(txKey{}).(*gorm.DB); ok {
		return tx
	}
	return gdb.WithContext(ctx)
}

// InTx reports whether ctx carries a transaction.
func InTx(ctx context.Context) bool {
	_, ok := ctx.Value(txKey{}).(*gorm.DB)
	return ok
}

// Transact runs fn in a transaction and commits it when fn returns nil. When
// ctx already carries a transaction, fn joins it and the outermost Transact
// decides. On SQLite, write transactions queue in-process for the single
// write lock.
func Transact(ctx context.Context, gdb *gorm.DB, fn func(ctx context.Context) error) error {
	if InTx(ctx) {
		return fn(ctx)
	}
	if sqlDB, err := gdb.DB(); err == nil {
		if v, ok := writeLocks.Load(sqlDB); ok {
			sem := v.(chan struct{})
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return fmt.Errorf("wait for write lock: %w", ctx.Err())
			}
			defer func() { <-sem }()
		}
	}
	return gdb.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return fn(context.WithValue(ctx, txKey{}, tx))
	})
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
