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
log=$(mktemp)
set +e
dotnet test Rpt.Portal.Tests/Rpt.Portal.Tests.csproj -c Release --nologo "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
summary=$(grep -E '(Passed|Failed)!  - Failed: ' "$log" | tail -n 1 || true)
if [ -z "$summary" ]; then
  echo "0 passed, 1 failed, 0 skipped"
  echo "test.sh: the test run did not complete (exit $status)" >&2
  exit 1
fi
failed=$(sed -E 's/.*Failed: *([0-9]+).*/\1/' <<<"$summary")
passed=$(sed -E 's/.*Passed: *([0-9]+).*/\1/' <<<"$summary")
skipped=$(sed -E 's/.*Skipped: *([0-9]+).*/\1/' <<<"$summary")
[ -d artifacts/screenshots ] && echo "test.sh: browser screenshots and the accessibility report are in artifacts/screenshots/"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$skipped" -eq 0 ]
