#!/usr/bin/env bash
# `make security-report`: run the security tests (permission matrix, URL walk, IDOR probes and
# the audit app's tests) and print only their FIGURE lines and pytest's summary line
# (SECURITY.md figures 1, 2 and the access-log figures). Exit status is pytest's.
# Extra arguments are passed to pytest (e.g. more test paths).
set -uo pipefail
cd "$(dirname "$0")/.."
PYTEST="${PYTEST:-.venv/bin/pytest}"
output="$(mktemp)"
trap 'rm -f "$output"' EXIT

"$PYTEST" -s -q -p no:xdist -p no:cacheprovider \
    oncoplanner/tests/test_permission_matrix.py \
    oncoplanner/tests/test_url_walk.py \
    oncoplanner/tests/test_idor.py \
    audit/tests \
    "$@" >"$output" 2>&1
status=$?

grep -oE 'FIGURE [0-9]+.*' "$output" | sort -s -k2,2n
# pytest's final line: "N passed, M failed ... in 12.3s" (with -q, undecorated).
grep -E '^(=+ )?[0-9]+ (passed|failed|error|skipped|xfailed|deselected)|^no tests ran' "$output" | tail -n 1
if [ "$status" -ne 0 ]; then
    echo "security-report: pytest failed (exit $status); failing tests:"
    grep -E '^(FAILED|ERROR) ' "$output" | head -n 40
fi
exit "$status"
