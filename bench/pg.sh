# Postgres helpers of the benchmark scripts, sourced by bench/run.sh and
# bench/proxy/run.sh.

# pg_why BASE: why the server at BASE cannot be used (SKIP_PG=1, no psql,
# no answer), or nothing when it can.
pg_why() {
	if [[ ${SKIP_PG:-0} == 1 ]]; then
		echo "SKIP_PG=1"
	elif ! command -v psql >/dev/null; then
		echo "psql is not installed"
	elif ! psql "$1" -qAtc 'SELECT 1' >/dev/null 2>&1; then
		echo "$(sed -E 's#//([^:@/]*):[^@]*@#//\1:***@#' <<<"$1") does not answer"
	fi
}

# pg_create BASE NAME: creates database NAME on the server at BASE and
# prints its URL.
pg_create() {
	psql "$1" -qc "CREATE DATABASE $2" >/dev/null
	python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$1" "$2"
}

# pg_drop BASE NAME: drops database NAME, its connections with it.
pg_drop() {
	psql "$1" -qc "DROP DATABASE IF EXISTS $2 WITH (FORCE)" >/dev/null 2>&1 || true
}
