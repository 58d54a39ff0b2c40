#!/usr/bin/env bash
# test-env.sh runs a command with the test environment set up: it points the
# Postgres suites at the local server when one answers and no DSN was given,
# and installs kcat (for the third-party Kafka client test) when it can. It
# never fails for lack of either: the suites that need them say they skipped.
set -euo pipefail

if [ -z "${STRANGLER_TEST_POSTGRES_DSN:-}" ]; then
  if command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432 -t 2; then
    export STRANGLER_TEST_POSTGRES_DSN="postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
    echo "test-env: Postgres suites use $STRANGLER_TEST_POSTGRES_DSN" >&2
  else
    echo "test-env: no Postgres on 127.0.0.1:5432 and STRANGLER_TEST_POSTGRES_DSN unset: Postgres suites will skip" >&2
  fi
fi

if ! command -v kcat >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test-env: installing kcat for the third-party client test" >&2
    (apt-get install -y -qq kcat >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq kcat >/dev/null 2>&1; }) \
      || echo "test-env: could not install kcat: its test will skip" >&2
  else
    echo "test-env: kcat not installed: its test will skip" >&2
  fi
fi

exec "$@"
