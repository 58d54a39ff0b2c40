#!/usr/bin/env bash
# Proxy benchmark. wrk, with the same threads, connections and duration,
# against:
#   direct   the backend itself
#   nginx    nginx as a reverse proxy (upstream keepalive)
#   proxy    strangler proxy with 50 routes, metrics and access log on
#   shared   the same proxy with its control state in the shared Postgres
#            store (control.dsn) on a fresh database, as a replica runs;
#            left out, and said so, without Postgres
#   shadow   the same, with the benchmarked module in shadow mode
# and prints requests per second, p50, p99 and the ratios to direct and to
# nginx: for each, the median over ROUNDS interleaved rounds of each
# measure, and the range of p99 over the rounds; the targets are checked on
# ratios paired by round (proxy and nginx of the same round), the median
# over the rounds. EXTRA=minimal adds the
# smallest fasthttp forwarder (bench/proxy/minimal), the ceiling for a Go
# proxy here.
#
# Settings (environment): DURATION (10s), CONNS (32), THREADS (2),
# ROUNDS (5), BENCH_POSTGRES_DSN (the server the shared scenario creates
# its database on; default postgres://postgres@127.0.0.1:5432/test),
# SKIP_PG (1: no shared scenario), PIN (1: the server under test gets CPU 0 and wrk and the
# backends the others; 0: no pinning), STRANGLER_BIN (default bin/strangler,
# built if missing). It installs wrk and nginx with apt-get when missing.
# docs/proxy.md explains the set-up and the targets.
set -euo pipefail

DURATION=${DURATION:-10s}
CONNS=${CONNS:-32}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-5}
PIN=${PIN:-1}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=bench/pg.sh
source "$ROOT/bench/pg.sh"
WORK=$(mktemp -d -t strangler-proxy-bench.XXXXXX)
PIDS=()

cleanup() {
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	if [[ -f $WORK/nginx.pid ]]; then kill "$(cat "$WORK/nginx.pid" 2>/dev/null)" 2>/dev/null || true; fi
	wait 2>/dev/null || true
	if [[ -n ${SHARED_DB:-} ]]; then pg_drop "$PG_BASE" "$SHARED_DB"; fi
	rm -rf "$WORK"
}
trap cleanup EXIT

log() { echo "bench/proxy: $*" >&2; }

install_missing() {
	local missing=()
	command -v wrk >/dev/null || missing+=(wrk)
	command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)
	((${#missing[@]} == 0)) && return
	log "installing ${missing[*]} with apt-get"
	local sudo=()
	[[ $(id -u) -ne 0 ]] && sudo=(sudo)
	"${sudo[@]}" apt-get install -y "${missing[@]}" >/dev/null 2>&1 ||
		{ "${sudo[@]}" apt-get update >/dev/null && "${sudo[@]}" apt-get install -y "${missing[@]}" >/dev/null; }
}
install_missing
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# CPU placement: the server under test (nginx or the proxy) alone on CPU 0,
# wrk and the backends on the rest, so that every server gets the same
# dedicated core and the load side is the same for all.
NCPU=$(nproc)
SERVER_CPUS="" LOAD_CPUS=""
if [[ $PIN == 1 && $NCPU -ge 2 ]] && command -v taskset >/dev/null; then
	SERVER_CPUS=0
	LOAD_CPUS=1-$((NCPU - 1))
fi
on() { # on CPUS cmd...: run pinned when pinning is on
	local cpus=$1
	shift
	if [[ -n $cpus ]]; then taskset -c "$cpus" "$@"; else "$@"; fi
}
start() { # start CPUS LOG cmd...: start a server in the background, pinned
	local cpus=$1 logf=$2
	shift 2
	if [[ -n $cpus ]]; then
		(exec taskset -c "$cpus" "$@" >"$logf" 2>&1) &
	else
		(exec "$@" >"$logf" 2>&1) &
	fi
	PIDS+=($!)
}
NGINX_WORKERS=auto
[[ -n $SERVER_CPUS ]] && NGINX_WORKERS=1

log "building"
(cd "$ROOT" && go build -o "$WORK/backend" ./bench/proxy/backend && go build -o "$WORK/minimal" ./bench/proxy/minimal)
STRANGLER=${STRANGLER_BIN:-$ROOT/bin/strangler}
if [[ ! -x $STRANGLER ]]; then
	(cd "$ROOT" && go build -o "$WORK/strangler" ./cmd/strangler)
	STRANGLER=$WORK/strangler
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P_LEGACY=$(free_port) P_CAND=$(free_port) P_NGINX=$(free_port)
P_PROXY=$(free_port) P_PROXY_ADMIN=$(free_port) P_SHADOW=$(free_port) P_SHADOW_ADMIN=$(free_port) P_MINIMAL=$(free_port)
P_SHARED=$(free_port) P_SHARED_ADMIN=$(free_port)

# The shared scenario's control store: a fresh database on the Postgres
# server, dropped at the end.
PG_BASE=${BENCH_POSTGRES_DSN:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
SHARED_DB="" SHARED_DSN=""
SHARED_WHY=$(pg_why "$PG_BASE")
if [[ -z $SHARED_WHY ]]; then
	SHARED_DB=strangler_bench_proxy_shared_$$_$RANDOM
	SHARED_DSN=$(pg_create "$PG_BASE" "$SHARED_DB")
fi

# The path wrk requests: a route in the middle of the 50.
TARGET=/api/m25/items/42

# Legacy and candidate give the same answer, as a faithful extraction would,
# so that the shadow comparisons match.
start "$LOAD_CPUS" "$WORK/legacy.log" "$WORK/backend" -addr "127.0.0.1:$P_LEGACY" -name app
start "$LOAD_CPUS" "$WORK/candidate.log" "$WORK/backend" -addr "127.0.0.1:$P_CAND" -name app

# nginx: a plain production-like reverse proxy with upstream keepalive,
# forwarding headers and a buffered access log, as the proxy has.
cat >"$WORK/nginx.conf" <<EOF
worker_processes $NGINX_WORKERS;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
  log_format main '\$remote_addr \$request_id [\$time_iso8601] "\$request" \$status \$body_bytes_sent \$request_time \$upstream_response_time';
  access_log $WORK/nginx-access.log main buffer=256k flush=1s;
  upstream legacy { server 127.0.0.1:$P_LEGACY; keepalive 64; }
  server {
    listen 127.0.0.1:$P_NGINX;
    location / {
      proxy_pass http://legacy;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Forwarded-Host \$host;
      proxy_set_header X-Request-ID \$request_id;
    }
  }
}
EOF
start "$SERVER_CPUS" "$WORK/nginx.out" "$NGINX" -c "$WORK/nginx.conf" -p "$WORK"

# The route table: 50 routes, a catch-all to legacy and 49 modules with
# one route each, some with methods; module m25, which wrk requests, is in
# shadow mode in the shadow run.
routes() { # routes SHADOWED_MODULE
	echo "backends:"
	echo "  candidate: {urls: [\"http://127.0.0.1:$P_CAND\"]}"
	echo "modules:"
	echo "  - name: default"
	echo "    routes: [{id: default, prefix: /}]"
	for i in $(seq -w 1 49); do
		echo "  - name: m$i"
		echo "    candidate: candidate"
		if [[ m$i == "$1" ]]; then echo "    mode: shadow"; fi
		if ((10#$i % 3 == 0)); then
			echo "    routes: [{id: m$i, methods: [GET, POST], prefix: /api/m$i}]"
		else
			echo "    routes: [{id: m$i, prefix: /api/m$i}]"
		fi
	done
}
routes none >"$WORK/routes.yaml"
routes m25 >"$WORK/routes-shadow.yaml"
ROUTES=$(grep -c "id: " "$WORK/routes.yaml")

start_proxy() { # start_proxy NAME PORT ADMIN_PORT ROUTES_FILE [CONTROL_DSN]
	mkdir -p "$WORK/$1"
	local control=""
	[[ -n ${5:-} ]] && control="control: {dsn: '$5'}"
	cat >"$WORK/$1/config.yaml" <<EOF
data_dir: $WORK/$1
log: {level: warn}
proxy:
  addr: 127.0.0.1:$2
  admin_addr: 127.0.0.1:$3
  admin_token: bench-admin-token-0123456789abcdef
  legacy: http://127.0.0.1:$P_LEGACY
  routes_file: $4
  access_log: {path: $WORK/$1/access.log}
$control
EOF
	start "$SERVER_CPUS" "$WORK/$1/out.log" "$STRANGLER" proxy --config "$WORK/$1/config.yaml"
}
# The smallest fasthttp forwarder (no routing, headers, metrics or log):
# the ceiling for a Go proxy here. Measured when EXTRA names it.
start "$SERVER_CPUS" "$WORK/minimal.log" "$WORK/minimal" -addr "127.0.0.1:$P_MINIMAL" -upstream "127.0.0.1:$P_LEGACY"
start_proxy proxy "$P_PROXY" "$P_PROXY_ADMIN" "$WORK/routes.yaml"
start_proxy shadow "$P_SHADOW" "$P_SHADOW_ADMIN" "$WORK/routes-shadow.yaml"
UP_PORTS="$P_LEGACY $P_CAND $P_NGINX $P_PROXY $P_SHADOW $P_MINIMAL"
if [[ -n $SHARED_DSN ]]; then
	start_proxy shared "$P_SHARED" "$P_SHARED_ADMIN" "$WORK/routes.yaml" "$SHARED_DSN"
	UP_PORTS+=" $P_SHARED"
else
	log "shared-store scenario left out: $SHARED_WHY"
fi

wait_up() {
	for _ in $(seq 100); do
		curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	log "$1 did not come up"
	cat "$WORK"/*.log "$WORK"/*/out.log >&2 || true
	exit 1
}
for port in $UP_PORTS; do wait_up "http://127.0.0.1:$port$TARGET"; done
curl -fsS "http://127.0.0.1:$P_PROXY$TARGET" | grep -q '"backend":"app"' || { log "the proxy does not reach the backend"; exit 1; }
if [[ -n $SHARED_DSN ]]; then
	# The shared proxy serves its table from the store: /readyz says so.
	curl -fsS "http://127.0.0.1:$P_SHARED_ADMIN/readyz" | python3 -c 'import json,sys; c=json.load(sys.stdin)["control"]; sys.exit(0 if c["shared"] and not c["degraded"] and c["revision"] > 0 else 1)' ||
		{ log "the shared proxy does not serve from the shared store"; exit 1; }
fi

# to_ms VALUE: wrk's latency ("512.00us", "1.20ms", "1.01s") in ms.
to_ms() {
	awk -v v="$1" 'BEGIN {
		n = v + 0
		if (v ~ /us$/) n = n / 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n = n * 1000
		printf "%.3f", n }'
}

declare -A RPS P50 P99
run_wrk() { # run_wrk NAME PORT ROUND
	local out
	out=$(on "$LOAD_CPUS" wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "http://127.0.0.1:$2$TARGET")
	local rps p50 p99 errors
	rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
	p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
	p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
	errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out")
	if [[ -n $errors ]]; then log "$1 round $3: $errors"; fi
	RPS[$1.$3]=$rps P50[$1.$3]=$p50 P99[$1.$3]=$p99
	log "$(printf '%-7s round %d: %10.0f req/s  p50 %7.3f ms  p99 %7.3f ms' "$1" "$3" "$rps" "$p50" "$p99")"
}

SHARED=""
[[ -n $SHARED_DSN ]] && SHARED=shared
read -r -a SCENARIOS <<<"direct nginx ${EXTRA:-} proxy $SHARED shadow"
declare -A PORT=([direct]=$P_LEGACY [nginx]=$P_NGINX [proxy]=$P_PROXY [shadow]=$P_SHADOW [minimal]=$P_MINIMAL [shared]=$P_SHARED)
PINNING="none"
[[ -n $SERVER_CPUS ]] && PINNING="server under test on CPU $SERVER_CPUS, wrk and backends on CPUs $LOAD_CPUS"
log "wrk -t$THREADS -c$CONNS -d$DURATION, $ROUNDS rounds, pinning: $PINNING; $ROUTES routes"
for s in "${SCENARIOS[@]}"; do # warm-up
	on "$LOAD_CPUS" wrk -t"$THREADS" -c"$CONNS" -d2s "http://127.0.0.1:${PORT[$s]}$TARGET" >/dev/null
done
for r in $(seq 1 "$ROUNDS"); do
	for s in "${SCENARIOS[@]}"; do run_wrk "$s" "${PORT[$s]}" "$r"; done
done

# median ARRAY NAME: the median of one measure over the rounds. Each
# measure's median is taken on its own, so that one disturbed round (this
# machine's neighbours, a vCPU stall) moves none of them.
median() {
	local -n arr=$1
	for r in $(seq 1 "$ROUNDS"); do echo "${arr[$2.$r]}"; done | sort -g | awk -v n="$ROUNDS" 'NR == int((n + 1) / 2)'
}
spread() { # spread ARRAY NAME: "min-max" over the rounds
	local -n arr=$1
	for r in $(seq 1 "$ROUNDS"); do echo "${arr[$2.$r]}"; done | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%.2f-%.2f", lo, hi}'
}
declare -A M_RPS M_P50 M_P99 S_P99
for s in "${SCENARIOS[@]}"; do
	M_RPS[$s]=$(median RPS "$s") M_P50[$s]=$(median P50 "$s") M_P99[$s]=$(median P99 "$s") S_P99[$s]=$(spread P99 "$s")
done

echo
echo "Proxy benchmark: wrk -t$THREADS -c$CONNS -d$DURATION, GET $TARGET, median of $ROUNDS rounds"
printf '%-8s %12s %10s %10s %12s %10s %10s\n' scenario req/s p50_ms p99_ms p99_range x_direct x_nginx
for s in "${SCENARIOS[@]}"; do
	awk -v s="$s" -v r="${M_RPS[$s]}" -v p50="${M_P50[$s]}" -v p99="${M_P99[$s]}" -v sp="${S_P99[$s]}" -v d="${M_RPS[direct]}" -v n="${M_RPS[nginx]}" \
		'BEGIN { printf "%-8s %12.0f %10.3f %10.3f %12s %10.2f %10.2f\n", s, r, p50, p99, sp, r / d, r / n }'
done
# paired ARRAY A B: the median over the rounds of A's measure divided by
# B's in the same round. Both ran within seconds of each other, so the
# machine's slow and fast phases cancel out of the ratio.
paired() {
	local -n arr=$1
	for r in $(seq 1 "$ROUNDS"); do awk -v a="${arr[$2.$r]}" -v b="${arr[$3.$r]}" 'BEGIN { printf "%.4f\n", a / b }'; done |
		sort -g | awk -v n="$ROUNDS" 'NR == int((n + 1) / 2)'
}
R_RPS=$(paired RPS proxy nginx) R_P99=$(paired P99 proxy nginx) R_SHADOW=$(paired RPS shadow proxy)
awk -v t="$R_RPS" -v l="$R_P99" -v sh="$R_SHADOW" 'BEGIN {
	printf "\ntargets (paired per round, median): proxy/nginx throughput %.2f (>= 1.00: %s), proxy/nginx p99 %.2f (<= 1.00: %s), shadow/proxy throughput %.2f (>= 0.80: %s)\n",
		t, (t >= 1 ? "met" : "MISSED"), l, (l <= 1 ? "met" : "MISSED"), sh, (sh >= 0.8 ? "met" : "MISSED") }'
# The shared store is control plane only: the data plane's throughput
# with it stays at the single-process ratio to nginx: the target is the
# shared proxy at 95% or more of the proxy, paired per round.
if [[ -n $SHARED ]]; then
	R_SHARED=$(paired RPS shared nginx) R_SHARED_PROXY=$(paired RPS shared proxy)
	awk -v s="$R_SHARED" -v p="$R_RPS" -v sp="$R_SHARED_PROXY" 'BEGIN {
		printf "shared store (paired per round, median): shared/nginx throughput %.2f beside proxy/nginx %.2f, shared/proxy %.2f (>= 0.95: %s)\n",
			s, p, sp, (sp >= 0.95 ? "met" : "MISSED") }'
else
	echo "shared store: not measured ($SHARED_WHY)"
fi

# The shadow run compared copies in the background; show that it did.
curl -fsS -H "Authorization: Bearer bench-admin-token-0123456789abcdef" "http://127.0.0.1:$P_SHADOW_ADMIN/v1/modules/m25" |
	python3 -c 'import json,sys; s=json.load(sys.stdin)["shadow"]; print("shadow copies: %d compared, %d mismatched, %d dropped" % (s["compared"], s["mismatches"], s["dropped"]))'
