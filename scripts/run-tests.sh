#!/usr/bin/env bash
# Run the whole suite. pytest's exit code 5 ("no tests collected") is turned into
# a failure with a message: a suite that silently runs nothing must not pass.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
    echo "error: pytest collected no tests (exit code 5); the suite is broken or empty" >&2
    exit 1
fi
exit "$rc"
