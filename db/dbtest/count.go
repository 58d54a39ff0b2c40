package dbtest

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// CountStatements counts every statement run on gdb from now on, through
// gorm or past its builder (db.WriteInserts), by the trace each gives gdb's
// logger, so that a test or benchmark can state the round trips of an
// operation (BEGIN and COMMIT, which are not traced, not included). It
// wraps gdb's logger, which every session of gdb shares, until the test
// ends.
func CountStatements(tb testing.TB, gdb *gorm.DB) *atomic.Int64 {
	tb.Helper()
	inner := gdb.Config.Logger
	c := &countingLogger{Interface: inner, n: new(atomic.Int64)}
	gdb.Config.Logger = c
	tb.Cleanup(func() { gdb.Config.Logger = inner })
	return c.n
}

// countingLogger counts the statements traced through it and passes them
// on.
type countingLogger struct {
	logger.Interface
	n *atomic.Int64
}

// LogMode keeps the count across a change of level.
func (c *countingLogger) LogMode(level logger.LogLevel) logger.Interface {
	return &countingLogger{Interface: c.Interface.LogMode(level), n: c.n}
}

// Trace counts the statement.
func (c *countingLogger) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	c.n.Add(1)
	c.Interface.Trace(ctx, begin, fc, err)
}
