"""The README's main command runs end to end and ends with a verified store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from processes import REPO, run_verify

pytestmark = pytest.mark.slow


def test_demo_runs_and_leaves_a_store_that_verifies(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "client.demo", "--data-dir", str(data_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        env={"COLUMNS": "160", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for expected in ("BAD_SIGNATURE", "DUPLICATE_TXID", "FORBIDDEN", "TIME_SKEW", "POLICY_NOT_MET", "matches", "OK:",
                     "unauthenticated", "forbidden"):
        assert expected in result.stdout, f"demo output lacks {expected!r}"
    assert run_verify(data_dir).returncode == 0
