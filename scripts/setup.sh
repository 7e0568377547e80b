#!/usr/bin/env bash
# Create .venv on CPython 3.10 and install the project into it.
# CPython 3.10 is required: the openfhe wheel ships a 3.10 extension only.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python310() {
    if [ -n "${QCL_PYTHON:-}" ]; then echo "$QCL_PYTHON"; return; fi
    if command -v pyenv >/dev/null 2>&1; then
        local candidate
        for candidate in "$(pyenv root)"/versions/3.10.*/bin/python3.10; do
            if [ -x "$candidate" ]; then echo "$candidate"; return; fi
        done
    fi
    if command -v python3.10 >/dev/null 2>&1 && python3.10 -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
        command -v python3.10; return
    fi
}

venv_is_310() {
    [ -x .venv/bin/python ] && .venv/bin/python -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null
}

if ! venv_is_310; then
    python=$(find_python310)
    if [ -z "$python" ]; then
        cat >&2 <<'MSG'
error: CPython 3.10 not found.
Quancheng Ledger needs CPython 3.10 (the openfhe wheel only imports on 3.10).
Install it, then run this command again:
  - with pyenv:   pyenv install 3.10
  - on Debian/Ubuntu: apt-get install python3.10 python3.10-venv (deadsnakes PPA on Ubuntu)
  - or point QCL_PYTHON at a python3.10 binary: QCL_PYTHON=/path/to/python3.10 make test
MSG
        exit 1
    fi
    echo "setup: creating .venv with $python"
    rm -rf .venv
    "$python" -m venv .venv
fi

# Reinstall only when the dependency list changed.
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
    echo "setup: installing quancheng-ledger and its dependencies into .venv"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
    rm -f .venv/.installed-*
    touch "$stamp"
fi
