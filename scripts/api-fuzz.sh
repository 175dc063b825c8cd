#!/usr/bin/env bash
# SECURITY.md figure 7: schemathesis against the REST API's OpenAPI schema, in-process (WSGI),
# as a clinician and as a patient (personal API tokens), with the coverage phase on.
# Prints: FIGURE 7 api-fuzz: cases=N server_errors=0 check_failures=0 ...
# Fails unless cases >= 2000 and there are no server errors or check failures.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
EXAMPLES=${API_FUZZ_EXAMPLES:-10}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
API_FUZZ_FULL=1 API_FUZZ_EXAMPLES="$EXAMPLES" "$PY" -m pytest -q -s -p no:xdist -p no:cacheprovider \
    oncoplanner/tests/test_api_fuzz.py >"$log" 2>&1 || status=$?
grep -E "passed|failed|error" "$log" | tail -3
figure=$(grep -E "^FIGURE 7 api-fuzz:" "$log" | tail -1 || true)
if [[ -z "$figure" ]]; then
    tail -50 "$log"
    echo "api-fuzz: no figure line (pytest exit $status)" >&2
    exit 1
fi
echo "$figure"
cases=$(sed -E 's/.*cases=([0-9]+).*/\1/' <<<"$figure")
errors=$(sed -E 's/.*server_errors=([0-9]+).*/\1/' <<<"$figure")
if [[ $status -ne 0 || $cases -lt 2000 || $errors -ne 0 ]]; then
    grep -E "^(FAILED|E )" "$log" | head -40 || true
    echo "api-fuzz: FAILED (pytest exit $status, cases=$cases, server_errors=$errors)" >&2
    exit 1
fi
