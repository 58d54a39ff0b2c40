// Package dbtest gives tests real databases: a fresh SQLite file, or a fresh
// Postgres database created for the test and dropped after it.
//
// Postgres comes from STRANGLER_TEST_POSTGRES_DSN, a URL to a database the
// test user may CREATE DATABASE from. Without it the Postgres subtests skip,
// saying why; with STRANGLER_REQUIRE_POSTGRES=1 (as in CI) they fail instead,
// so that a missing server never passes for a green run.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx" for database/sql

	"github.com/stranglerkit/strangler/db"
)

// The environment variables dbtest reads.
const (
	EnvPostgresDSN     = "STRANGLER_TEST_POSTGRES_DSN"
	EnvRequirePostgres = "STRANGLER_REQUIRE_POSTGRES"
)

// SQLiteDSN returns the DSN of a new SQLite file in the test's temp dir.
func SQLiteDSN(t testing.TB) string {
	t.Helper()
	return "sqlite:" + filepath.Join(t.TempDir(), "test.db")
}

// PostgresAvailable reports whether Postgres tests can run.
func PostgresAvailable() bool { return os.Getenv(EnvPostgresDSN) != "" }

// PostgresDSN creates a new database for the test and returns its URL. The
// database is dropped when the test ends. It skips the test when no server is
// configured, or fails it when STRANGLER_REQUIRE_POSTGRES=1.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvPostgresDSN)
	if base == "" {
		if os.Getenv(EnvRequirePostgres) == "1" {
			t.Fatalf("postgres required (%s=1) but %s is not set", EnvRequirePostgres, EnvPostgresDSN)
		}
		t.Skipf("postgres suite skipped: %s is not set", EnvPostgresDSN)
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		if os.Getenv(EnvRequirePostgres) == "1" {
			t.Fatalf("postgres required but %s does not answer: %v", db.Redact(base), err)
		}
		t.Skipf("postgres suite skipped: %s does not answer: %v", db.Redact(base), err)
	}
	name := DatabaseName(t.Name())
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE "`+name+`" TEMPLATE template0`); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", base)
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("postgres DSN: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

var nonWord = regexp.MustCompile(`[^a-z0-9]+`)

// DatabaseName derives a unique, valid database name from a test name.
func DatabaseName(testName string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	s := nonWord.ReplaceAllString(strings.ToLower(testName), "_")
	if len(s) > 40 {
		s = s[len(s)-40:]
	}
	return "strangler_t_" + strings.Trim(s, "_") + "_" + hex.EncodeToString(b[:])
}

// Dialects runs fn as a subtest on a fresh SQLite file and on a fresh
// Postgres database.
func Dialects(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLiteDSN(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, PostgresDSN(t)) })
}
