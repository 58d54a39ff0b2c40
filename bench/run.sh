#!/usr/bin/env bash
# `make bench`: every benchmark of Strangler, then one summary.
#
#   monolith  wrk against the seeded shop on SQLite and Postgres: GET one
#             product, GET through the proxy, POST an order directly and
#             through the proxy, and orders at a fixed 250/s with their p99
#             (bench/monolith/run.sh, bench/rate)
#   proxy     wrk against a backend directly, nginx, the proxy with 50
#             routes, the same proxy on the shared Postgres control store,
#             and the proxy with a module in shadow (bench/proxy/run.sh)
#   control   the convergence of a flip over 3 proxy replicas on one
#             Postgres: p50, p99 and max until every replica serves it
#             (go run ./bench/control)
#   events    the relay's throughput (outbox -> broker) and the end-to-end
#             latency at a steady rate, on SQLite and Postgres
#             (go run ./bench/events)
#   orders    placing orders over HTTP with ORDERS_CLIENTS concurrent
#             clients: the monolith's POST /api/orders (one in-process
#             transaction) against the orders service's placement saga
#             (inventory service and payments over HTTP, the saga log, the
#             event store), in the same run, on SQLite and Postgres:
#             orders/s, p50, p99 and the saga's ratios (BenchmarkPlace in
#             extracted/orders)
#   go        the Go benchmarks of ./proxy/... and ./monolith/...
#
# Settings (environment):
#   DURATION (10s) and CONNS (32): each wrk run, in the monolith and proxy
#     benchmarks; THREADS (2) wrk's threads.
#   PROXY_ROUNDS (5): interleaved rounds of the proxy benchmark.
#   EVENTS (200000), EVENTS_RATE (1000), EVENTS_DURATION (10s): the events
#     benchmark's throughput run and latency run.
#   BENCHTIME (1s): go test -benchtime.
#   CONTROL_CHANGES (100), CONTROL_REPLICAS (3): the control benchmark's
#     flips and replicas.
#   ORDERS_CLIENTS (16), ORDERS_DURATION (10s), ORDERS_ROUNDS (2): the
#     orders benchmark's clients, its time per side and database, and the
#     rounds in which the two sides take turns.
#   SKIP_MONOLITH=1, SKIP_PROXY=1, SKIP_CONTROL=1, SKIP_EVENTS=1,
#     SKIP_ORDERS=1, SKIP_GO=1: leave one out.
#   SKIP_PG=1: SQLite only, everywhere.
#   BENCH_POSTGRES_DSN: the Postgres server the benchmarks create their
#     databases on (each its own, dropped after); default
#     $STRANGLER_TEST_POSTGRES_DSN, else postgres://postgres@127.0.0.1:5432/test.
#   RATE (250): the fixed rate of the monolith's order@ scenarios.
# It installs wrk and nginx with apt-get when missing. The defaults take
# about ten minutes on a 2-core machine: monolith 135 s, proxy 275 s,
# control 15 s, events 100 s, orders 55 s, Go benchmarks 60 s.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck source=bench/pg.sh
source "$ROOT/bench/pg.sh"

export DURATION=${DURATION:-10s}
export CONNS=${CONNS:-32}
export THREADS=${THREADS:-2}
export SKIP_PG=${SKIP_PG:-0}
PROXY_ROUNDS=${PROXY_ROUNDS:-5}
EVENTS=${EVENTS:-200000}
EVENTS_RATE=${EVENTS_RATE:-1000}
EVENTS_DURATION=${EVENTS_DURATION:-10s}
BENCHTIME=${BENCHTIME:-1s}
PG_BASE=${BENCH_POSTGRES_DSN:-${STRANGLER_TEST_POSTGRES_DSN:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}}
export BENCH_POSTGRES_DSN=$PG_BASE

OUT=$(mktemp -d -t strangler-bench.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
log() { echo "bench: $*" >&2; }

install_missing() {
	local missing=()
	command -v wrk >/dev/null || missing+=(wrk)
	if [[ ${SKIP_PROXY:-0} != 1 ]]; then
		command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)
	fi
	((${#missing[@]} == 0)) && return
	log "installing ${missing[*]} with apt-get"
	local sudo=()
	[[ $(id -u) -ne 0 ]] && sudo=(sudo)
	"${sudo[@]}" apt-get install -y "${missing[@]}" >/dev/null 2>&1 ||
		{ "${sudo[@]}" apt-get update >/dev/null && "${sudo[@]}" apt-get install -y "${missing[@]}" >/dev/null; }
}
install_missing

# Postgres: reachable, or every part runs on SQLite alone and says so.
PG=0
redacted=$(sed -E 's#//([^:@/]*):[^@]*@#//\1:***@#' <<<"$PG_BASE")
PG_WHY=$(pg_why "$PG_BASE")
[[ -z $PG_WHY ]] && PG=1
if ((PG == 0)); then
	log "Postgres benchmarks skipped: $PG_WHY"
	export SKIP_PG=1
else
	log "Postgres at $redacted"
fi

if [[ ! -x bin/strangler ]]; then
	log "building bin/strangler"
	go build -o bin/strangler ./cmd/strangler
fi
export STRANGLER_BIN=$ROOT/bin/strangler

declare -A STATUS TOOK
ORDER=()
part() { # part NAME CMD...: runs a benchmark, its stdout kept for the summary
	local name=$1
	shift
	ORDER+=("$name")
	log "=== $name: $*"
	local start=$SECONDS rc
	set +e
	"$@" | tee "$OUT/$name.txt"
	rc=${PIPESTATUS[0]}
	set -e
	if ((rc == 0)); then
		STATUS[$name]=ok
	else
		STATUS[$name]="FAILED (exit $rc)"
		log "$name failed"
	fi
	TOOK[$name]=$((SECONDS - start))
}
skipped() { # skipped NAME WHY
	ORDER+=("$1")
	STATUS[$1]="skipped: $2"
	TOOK[$1]=0
}

if [[ ${SKIP_MONOLITH:-0} == 1 ]]; then skipped monolith "SKIP_MONOLITH=1"; else
	part monolith ./bench/monolith/run.sh
fi

if [[ ${SKIP_PROXY:-0} == 1 ]]; then skipped proxy "SKIP_PROXY=1"; else
	part proxy env ROUNDS="$PROXY_ROUNDS" ./bench/proxy/run.sh
fi

# control_bench: the convergence benchmark on a database of its own.
control_bench() {
	local name=strangler_bench_control_$$_$RANDOM dsn rc=0
	dsn=$(pg_create "$PG_BASE" "$name")
	go run ./bench/control -strangler "$STRANGLER_BIN" -dsn "$dsn" -replicas "${CONTROL_REPLICAS:-3}" -changes "${CONTROL_CHANGES:-100}" || rc=$?
	pg_drop "$PG_BASE" "$name"
	return $rc
}
if [[ ${SKIP_CONTROL:-0} == 1 ]]; then skipped control "SKIP_CONTROL=1"; elif ((PG == 0)); then skipped control "no Postgres: $PG_WHY"; else
	part control control_bench
fi

if [[ ${SKIP_EVENTS:-0} == 1 ]]; then skipped events "SKIP_EVENTS=1"; else
	dialects=sqlite
	((PG == 1)) && dialects=sqlite,postgres
	part events go run ./bench/events -dialects "$dialects" -events "$EVENTS" -rate "$EVENTS_RATE" \
		-duration "$EVENTS_DURATION" -postgres-dsn "$PG_BASE"
fi

# The Go benchmarks take Postgres from the test DSN, and skip their
# Postgres half without it.
go_env=(env -u STRANGLER_TEST_POSTGRES_DSN)
((PG == 1)) && go_env=(env STRANGLER_TEST_POSTGRES_DSN="$PG_BASE")

if [[ ${SKIP_ORDERS:-0} == 1 ]]; then skipped orders "SKIP_ORDERS=1"; else
	part orders "${go_env[@]}" go test -count=1 -run '^$' -bench '^BenchmarkPlace$' -benchtime 1x -timeout 30m ./extracted/orders/ \
		-args -place.clients="${ORDERS_CLIENTS:-16}" -place.duration="${ORDERS_DURATION:-10s}" -place.rounds="${ORDERS_ROUNDS:-2}"
fi

if [[ ${SKIP_GO:-0} == 1 ]]; then skipped go "SKIP_GO=1"; else
	part go "${go_env[@]}" go test -run '^$' -bench . -benchtime "$BENCHTIME" ./proxy/... ./monolith/...
fi

# The summary: each part's own table, the end of what it printed.
echo
echo "================================ summary ================================"
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -sr), $(nproc) CPUs, $(go env GOVERSION)"
echo "postgres: $( ((PG == 1)) && echo "$redacted" || echo "skipped ($PG_WHY)")"
for name in "${ORDER[@]}"; do
	echo
	echo "--- $name: ${STATUS[$name]} (${TOOK[$name]} s)"
	[[ ${STATUS[$name]} == skipped* ]] && continue
	f=$OUT/$name.txt
	case $name in
	monolith) sed -n '/^Monolith benchmark/,$p' "$f" ;;
	proxy) sed -n '/^Proxy benchmark/,$p' "$f" ;;
	control) sed -n '/^Control convergence/,$p' "$f" ;;
	events) cat "$f" ;;
	orders) sed -n '/^Orders placement benchmark/,/^$/p' "$f" ;;
	go) grep -E '^(Benchmark|\s*--- (SKIP|FAIL)|FAIL)|skipped' "$f" || true ;;
	esac
done
failed=0
for name in "${ORDER[@]}"; do if [[ ${STATUS[$name]} == FAILED* ]]; then failed=1; fi; done
exit $failed
