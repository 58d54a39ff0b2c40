// Package servicekit holds what the shop's extracted services share and
// neither owns: their skeleton (Base: listener, database, metrics, health,
// Prepare, Run with the background parts, Close), the registration with
// the proxy (RegisterConfig), the check of a back sync's database setting,
// the runner of a consumer on the monolith's database, and the ownership
// switch that the flip moves (Ownership, its /v1/ownership API and the
// not-owner problem). Some of it lived in the inventory service, which
// made the orders service import inventory for plumbing.
package servicekit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/changefeed/consumer"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/internal/retry"
)

// CheckBackSyncDSN reports what is wrong with a service's
// sync.back_sync_dsn, backSync, given the service's own database own: it
// must parse, and name the monolith's database rather than the service's.
// An empty backSync (no back sync) is fine.
func CheckBackSyncDSN(backSync, own string) error {
	if backSync == "" {
		return nil
	}
	if _, err := db.ParseDSN(backSync); err != nil {
		return fmt.Errorf("sync.back_sync_dsn: %w", err)
	}
	if backSync == own {
		return errors.New("sync.back_sync_dsn: must be the monolith's database, not the service's own")
	}
	return nil
}

// RunConsumerOn runs a consumer on another database than the service's
// own, the monolith's at dsn, until ctx ends: a back sync. It migrates the
// inbox set into that database, opens it, builds the consumer from config
// (given the topic prefix) and opt, lets register add its handlers, and
// runs it. A failure to start or to run, such as a database that cannot
// be opened while the process has no file descriptors left, is retried
// with a backoff (1 s doubling up to 30 s), logged, rather than returned:
// a temporary error of one part must not end the service, or every
// component of `strangler up`. Only a consumer config that consumer.New
// refuses, which no retry mends, is returned.
func RunConsumerOn(ctx context.Context, dsn string, config func(topicPrefix string) consumer.Config, register func(*consumer.Consumer, *gorm.DB), opt consumer.Options) error {
	log := opt.Logger
	if log == nil {
		log = slog.Default()
	}
	backoff := retry.Backoff{Min: time.Second, Max: 30 * time.Second}
	for {
		err := runConsumerOn(ctx, dsn, config, register, opt)
		wait := backoff.Next()
		var refused *configError
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.As(err, &refused):
			return refused.err
		case err == nil:
			// The consumer ended without ctx ending: start it again.
		default:
			log.Warn("back sync stopped; starting it again", "error", err, "retry_in", wait)
		}
		if !retry.Sleep(ctx, wait) {
			return nil
		}
	}
}

// configError is consumer.New's refusal of the back sync's config.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }

// runConsumerOn is one run of RunConsumerOn's consumer.
func runConsumerOn(ctx context.Context, dsn string, config func(topicPrefix string) consumer.Config, register func(*consumer.Consumer, *gorm.DB), opt consumer.Options) error {
	if err := db.MigrateUp(ctx, dsn, consumer.Migrations()); err != nil {
		return fmt.Errorf("back sync: %w", err)
	}
	mdb, err := db.Open(ctx, dsn, db.Options{Logger: opt.Logger})
	if err != nil {
		return fmt.Errorf("back sync: %w", err)
	}
	defer func() { _ = db.Close(mdb) }()
	opt.Kafka.SetDefaults("")
	opt.DB = mdb
	c, err := consumer.New(config(opt.Kafka.TopicPrefix), opt)
	if err != nil {
		return &configError{fmt.Errorf("back sync: %w", err)}
	}
	register(c, mdb)
	return c.Run(ctx)
}
