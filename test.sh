#!/usr/bin/env bash
# Installs what the tests need that this machine lacks, then runs every test.
# Ends with one line: "N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")"

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# The PostgreSQL tests start a cluster of their own (initdb as the postgres user, loopback, a free port); never the machine's service.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "test.sh: installing ${need_apt[*]}"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null) \
      || echo "test.sh: could not install ${need_apt[*]}; the tests that need it will fail and say so"
  else
    echo "test.sh: ${need_apt[*]} missing and not root; the tests that need it will fail and say so"
  fi
fi

dotnet tool restore >/dev/null

# One PostgreSQL cluster for the run: initdb in a temporary directory as the postgres user (the server refuses root),
# loopback, a free port; stopped and removed on exit. Every harness of the PostgreSQL pass creates a database in it.
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
pg_dir=""
stop_pg() {
  if [ -n "$pg_dir" ]; then
    runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$pg_dir"
  fi
}
trap stop_pg EXIT
if [ -n "$pg_bin" ] && [ "$(id -u)" = 0 ]; then
  pg_dir=$(mktemp -d /tmp/rpt-test-pg.XXXXXX)
  chown postgres:postgres "$pg_dir"
  pg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  runuser -u postgres -- "$pg_bin/initdb" -D "$pg_dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
  runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 60 \
    -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
  export RPT_TEST_POSTGRES="Host=127.0.0.1;Port=$pg_port;Username=postgres;Database=postgres"
fi

log=$(mktemp)
log_pg=$(mktemp)
# Each pass also writes a test results file, from which the slowest tests are listed at the end: the whole run is kept
# under 20 minutes, and this says where its time goes.
results=artifacts/test-results
rm -rf "$results"
set +e
# A test that runs 10 minutes (the slowest take about 2) is hung: its host is stopped and the test named in the log,
# instead of the run waiting on it until CI's own limit.
hang=(--blame-hang-timeout 10m --blame-hang-dump-type none)
echo "test.sh: every test, storage on SQLite"
dotnet test Rpt.Portal.Tests/Rpt.Portal.Tests.csproj -c Release --nologo "${hang[@]}" \
  --logger "trx;LogFileName=sqlite.trx" --results-directory "$results" "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# The second pass: every test that touches storage, on PostgreSQL, the browser walks included (a page renders while
# each await yields, and PostgreSQL's reads yield where SQLite's did not: a first visit found a half-loaded dashboard).
echo "test.sh: the storage tests again, on PostgreSQL"
RPT_TEST_ENGINE=postgres dotnet test Rpt.Portal.Tests/Rpt.Portal.Tests.csproj -c Release --nologo --no-build "${hang[@]}" \
  --logger "trx;LogFileName=postgres.trx" --results-directory "$results" \
  --filter "(Kind=Sqlite|Kind=Http|Kind=Process|Kind=Component|Kind=Browser)&Engine!=Sqlite" "$@" 2>&1 | tee "$log_pg"
status_pg=${PIPESTATUS[0]}
set -e
count() { # passed failed skipped of one pass, or nothing if it did not complete
  local summary
  summary=$(grep -E '(Passed|Failed)!  - Failed: ' "$1" | tail -n 1 || true)
  [ -z "$summary" ] && return 0
  echo "$(sed -E 's/.*Passed: *([0-9]+).*/\1/' <<<"$summary") $(sed -E 's/.*Failed: *([0-9]+).*/\1/' <<<"$summary") $(sed -E 's/.*Skipped: *([0-9]+).*/\1/' <<<"$summary")"
}
read -r p1 f1 s1 <<<"$(count "$log")" || true
read -r p2 f2 s2 <<<"$(count "$log_pg")" || true
if [ -z "${p1:-}" ] || [ -z "${p2:-}" ]; then
  echo "test.sh: a test pass did not complete (exit $status on SQLite, $status_pg on PostgreSQL)" >&2
  echo "${p1:-0} passed, 1 failed, 0 skipped"
  exit 1
fi
[ -d artifacts/screenshots ] && echo "test.sh: browser screenshots and the accessibility report are in artifacts/screenshots/"
slowest() { # the ten slowest tests of a pass's results file: seconds and name (awk reads to the end: no SIGPIPE under pipefail)
  grep -o '<UnitTestResult [^>]*>' "$1" 2>/dev/null \
    | sed -E 's/.*testName="([^"]*)".*duration="([0-9]+):([0-9]+):([0-9.]+)".*/\2 \3 \4 \1/' \
    | awk '{ s = $1 * 3600 + $2 * 60 + $3; $1 = $2 = $3 = ""; sub(/^ +/, ""); printf "%7.1f s  %s\n", s, $0 }' \
    | sort -rn | awk 'NR <= 10'
}
for pass in sqlite postgres; do
  [ -f "$results/$pass.trx" ] || continue
  echo "test.sh: the slowest tests of the $pass pass (all results in $results/$pass.trx):"
  slowest "$results/$pass.trx" || true
done
echo "test.sh: SQLite pass $p1 passed, $f1 failed, $s1 skipped; PostgreSQL pass $p2 passed, $f2 failed, $s2 skipped"
passed=$((p1 + p2)); failed=$((f1 + f2)); skipped=$((s1 + s2))
echo "$passed passed, $failed failed, $skipped skipped"
[ "$status" -eq 0 ] && [ "$status_pg" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$skipped" -eq 0 ]
