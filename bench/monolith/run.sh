#!/usr/bin/env bash
# Monolith benchmark: wrk against `strangler monolith` (the seeded shop) on
# SQLite and on Postgres, in three scenarios:
#   get        GET /api/catalog/products/1, straight to the monolith
#   get/proxy  the same through `strangler proxy` (catch-all route to the
#              monolith, metrics and access log on): the proxy's overhead on
#              a real backend
#   order      POST /api/orders, two lines each, cycling the 20 seeded
#              customers and the active products (order.lua)
#   order/proxy  the same through the proxy
#   order@250, order/proxy@250
#              the same orders at a fixed 250 orders/s (go run ./bench/rate,
#              an open loop: wrk2 is not packaged), directly and through
#              the proxy, latency counted from each order's planned send
# It prints requests per second, p50 and p99 for each, the non-2xx answers,
# and the ratios: proxy to direct, and Postgres to SQLite. These are the
# baseline that the proxy and the extracted services are measured against.
# The targets for orders: >= 1,000 orders/s through the proxy (order/proxy)
# and p99 < 50 ms at 250 orders/s (order/proxy@250), on both databases.
#
# Before the order run it raises every active product's stock in AMS1 by a
# million units, so that no order fails for want of stock; any that fails
# anyway is counted and shown.
#
# Settings (environment): DURATION (10s), CONNS (32), THREADS (2), RATE
# (250, the fixed rate of the @ scenarios), SKIP_PG=1
# (SQLite only), BENCH_POSTGRES_DSN (the server to create the bench database
# on; default $STRANGLER_TEST_POSTGRES_DSN, else the local server),
# STRANGLER_BIN (default bin/strangler, built if missing). Nothing is pinned
# to CPUs: wrk, the proxy, the monolith and Postgres share the machine, as
# they would on a developer's laptop. It installs wrk with apt-get when
# missing. The table goes to stdout, progress to stderr.
set -euo pipefail

DURATION=${DURATION:-10s}
CONNS=${CONNS:-32}
THREADS=${THREADS:-2}
RATE=${RATE:-250}
SKIP_PG=${SKIP_PG:-0}
PG_BASE=${BENCH_POSTGRES_DSN:-${STRANGLER_TEST_POSTGRES_DSN:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/bench/monolith
WORK=$(mktemp -d -t strangler-monolith-bench.XXXXXX)
PIDS=()
PG_DB=""

log() { echo "bench/monolith: $*" >&2; }

stop_all() {
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	PIDS=()
}
drop_pg() {
	if [[ -n $PG_DB ]]; then
		psql "$PG_BASE" -qAtc "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null 2>&1 || log "could not drop database $PG_DB"
		PG_DB=""
	fi
}
cleanup() {
	stop_all
	drop_pg
	rm -rf "$WORK"
}
trap cleanup EXIT

if ! command -v wrk >/dev/null; then
	log "installing wrk with apt-get"
	sudo=()
	[[ $(id -u) -ne 0 ]] && sudo=(sudo)
	"${sudo[@]}" apt-get install -y wrk >/dev/null 2>&1 ||
		{ "${sudo[@]}" apt-get update >/dev/null && "${sudo[@]}" apt-get install -y wrk >/dev/null; }
fi

STRANGLER=${STRANGLER_BIN:-$ROOT/bin/strangler}
if [[ ! -x $STRANGLER ]]; then
	log "building bin/strangler"
	(cd "$ROOT" && go build -o "$WORK/strangler" ./cmd/strangler)
	STRANGLER=$WORK/strangler
fi

RATE_BIN=$WORK/rate
(cd "$ROOT" && go build -o "$RATE_BIN" ./bench/rate)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start() { # start LOG cmd...: a server in the background, remembered for cleanup
	local logf=$1
	shift
	(exec "$@" >"$logf" 2>&1) &
	PIDS+=($!)
}

wait_up() { # wait_up URL LOG: until URL answers 2xx, for up to 60 s
	for _ in $(seq 600); do
		curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	log "$1 did not come up; its log:"
	tail -20 "$2" >&2 || true
	exit 1
}

# to_ms VALUE: wrk's latency ("512.00us", "1.20ms", "1.01s") in ms.
to_ms() {
	awk -v v="$1" 'BEGIN {
		n = v + 0
		if (v ~ /us$/) n = n / 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n = n * 1000
		printf "%.3f", n }'
}

declare -A RPS P50 P99 BAD
ROWS=()
run_wrk() { # run_wrk DB SCENARIO WRK_ARGS...: the URL and any script among them
	local db=$1 scenario=$2
	shift 2
	local out
	out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$@")
	local rps p50 p99 bad
	rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
	p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
	p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
	# wrk counts non-2xx/3xx answers itself; socket errors (timeouts,
	# resets) are failures too.
	bad=$(awk '/Non-2xx or 3xx responses/ {n += $NF} /Socket errors/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10} END {print n + 0}' <<<"$out")
	grep -E '^orders:|^first not-2xx' <<<"$out" | sed "s|^|bench/monolith: $db $scenario: |" >&2 || true
	if ((bad > 0)); then log "$db $scenario: $bad failed requests: $(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr '\n' ' ')"; fi
	RPS[$db.$scenario]=$rps P50[$db.$scenario]=$p50 P99[$db.$scenario]=$p99 BAD[$db.$scenario]=$bad
	ROWS+=("$db.$scenario")
	log "$(printf '%-8s %-10s %9.0f req/s  p50 %8.3f ms  p99 %8.3f ms  failed %d' "$db" "$scenario" "$rps" "$p50" "$p99" "$bad")"
}

run_rate() { # run_rate DB SCENARIO URL SKUS: orders at $RATE/s for $DURATION
	local db=$1 scenario=$2 url=$3 skus=$4 out rc=0
	out=$("$RATE_BIN" -url "$url" -rate "$RATE" -duration "$DURATION" -customers 20 -skus "$skus") || rc=$?
	grep -v '^RESULT' <<<"$out" | sed "s|^|bench/monolith: $db $scenario: |" >&2
	local line rps p50 p99 bad
	line=$(grep '^RESULT' <<<"$out") || { log "$db $scenario: no result (exit $rc)"; exit 1; }
	rps=$(sed -E 's/.*rps=([^ ]+).*/\1/' <<<"$line") p50=$(sed -E 's/.*p50_ms=([^ ]+).*/\1/' <<<"$line")
	p99=$(sed -E 's/.*p99_ms=([^ ]+).*/\1/' <<<"$line") bad=$(sed -E 's/.*failed=([^ ]+).*/\1/' <<<"$line")
	RPS[$db.$scenario]=$rps P50[$db.$scenario]=$p50 P99[$db.$scenario]=$p99 BAD[$db.$scenario]=$bad
	ROWS+=("$db.$scenario")
	log "$(printf '%-8s %-16s %9.0f req/s  p50 %8.3f ms  p99 %8.3f ms  failed %d' "$db" "$scenario" "$rps" "$p50" "$p99" "$bad")"
}

bench_db() { # bench_db NAME DSN
	local name=$1 dsn=$2 dir=$WORK/$1
	mkdir -p "$dir"
	local p_mono p_proxy p_admin
	p_mono=$(free_port) p_proxy=$(free_port) p_admin=$(free_port)
	log "$name: starting the monolith (migrations and demo seed)"
	start "$dir/monolith.log" "$STRANGLER" monolith --data-dir "$dir" --addr "127.0.0.1:$p_mono" --dsn "$dsn"
	wait_up "http://127.0.0.1:$p_mono/readyz" "$dir/monolith.log"
	start "$dir/proxy.log" "$STRANGLER" proxy --data-dir "$dir" --log-level warn \
		--addr "127.0.0.1:$p_proxy" --admin-addr "127.0.0.1:$p_admin" --legacy "http://127.0.0.1:$p_mono"
	wait_up "http://127.0.0.1:$p_proxy/api/catalog/products/1" "$dir/proxy.log"

	local mono=http://127.0.0.1:$p_mono
	# The active products: SKUs for the orders, references for the stock.
	local products skus
	products=$(curl -fsS "$mono/api/catalog/products?active=true&limit=100" |
		python3 -c 'import json,sys; [print(p["sku"], p["product_ref"]) for p in json.load(sys.stdin)["items"]]')
	skus=$(awk '{print $1}' <<<"$products" | paste -sd, -)
	log "$name: raising the stock of $(wc -l <<<"$products") active products by 1,000,000 in AMS1"
	while read -r _ ref; do
		curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' \
			-d '{"warehouse":"AMS1","delta":1000000,"reason":"benchmark"}' "$mono/api/inventory/stock/$ref/adjustments"
	done <<<"$products"

	wrk -t"$THREADS" -c"$CONNS" -d2s "$mono/api/catalog/products/1" >/dev/null # warm-up
	run_wrk "$name" get "$mono/api/catalog/products/1"
	run_wrk "$name" get/proxy "http://127.0.0.1:$p_proxy/api/catalog/products/1"
	run_wrk "$name" order -s "$HERE/order.lua" "$mono" -- 20 "$skus"
	run_wrk "$name" order/proxy -s "$HERE/order.lua" "http://127.0.0.1:$p_proxy" -- 20 "$skus"
	run_rate "$name" "order@$RATE" "$mono" "$skus"
	run_rate "$name" "order/proxy@$RATE" "http://127.0.0.1:$p_proxy" "$skus"

	# The monolith's own count of placed orders, to set against wrk's: they
	# differ only by the requests in flight when wrk stopped.
	local placed
	placed=$(curl -fsS "$mono/metrics" | awk '/^http_requests_total\{/ && /route="\/api\/orders"/ && /method="POST"/ && /status="201"/ {n += $NF} END {printf "%d", n}')
	log "$name: the monolith's metrics count $placed orders placed (201) over the order scenarios"
	stop_all
}

log "wrk -t$THREADS -c$CONNS -d$DURATION; no CPU pinning"
bench_db sqlite "sqlite:$WORK/sqlite/monolith.db"

DBS=(sqlite)
if [[ $SKIP_PG == 1 ]]; then
	log "postgres skipped: SKIP_PG=1"
elif ! command -v psql >/dev/null; then
	log "postgres skipped: psql is not installed (apt-get install postgresql-client)"
elif ! psql "$PG_BASE" -qAtc 'SELECT 1' >/dev/null 2>&1; then
	log "postgres skipped: $(sed -E 's#//([^:@/]*):[^@]*@#//\1:***@#' <<<"$PG_BASE") does not answer"
else
	PG_DB=strangler_bench_$$
	psql "$PG_BASE" -qAtc "CREATE DATABASE \"$PG_DB\" TEMPLATE template0" >/dev/null
	# The same server and options, the bench's own database.
	pg_dsn=$(sed -E "s#^(postgres(ql)?://[^/?]+)(/[^?]*)?#\1/$PG_DB#" <<<"$PG_BASE")
	bench_db postgres "$pg_dsn"
	drop_pg
	DBS+=(postgres)
fi

echo
echo "Monolith benchmark: wrk -t$THREADS -c$CONNS -d$DURATION --latency, no CPU pinning"
printf '%-9s %-16s %10s %10s %10s %8s\n' db scenario req/s p50_ms p99_ms failed
for row in "${ROWS[@]}"; do
	printf '%-9s %-16s %10.0f %10.3f %10.3f %8d\n' "${row%%.*}" "${row#*.}" "${RPS[$row]}" "${P50[$row]}" "${P99[$row]}" "${BAD[$row]}"
done
echo
for db in "${DBS[@]}"; do
	awk -v db="$db" -v p="${RPS[$db.get/proxy]}" -v d="${RPS[$db.get]}" -v pp="${P99[$db.get/proxy]}" -v dp="${P99[$db.get]}" \
		'BEGIN { printf "%s: GET through the proxy / direct: throughput %.2f, p99 %.3f ms vs %.3f ms (%+.3f ms)\n", db, p / d, pp, dp, pp - dp }'
done
if [[ ${#DBS[@]} == 2 ]]; then
	for s in get order order/proxy; do
		awk -v s="$s" -v pg="${RPS[postgres.$s]}" -v sq="${RPS[sqlite.$s]}" \
			'BEGIN { printf "%s: postgres / sqlite throughput %.2f\n", s, pg / sq }'
	done
fi

# A run whose requests failed measured errors, not the shop: say so, and
# fail, so that `make bench` does not report its figures as good.
failed=0
for row in "${ROWS[@]}"; do if ((BAD[$row] > 0)); then failed=1; fi; done
if ((failed)); then
	echo "some requests failed (column failed): these figures are not a valid baseline" >&2
	exit 1
fi
