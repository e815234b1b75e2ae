"""Every shell example under examples/ runs to its end in a fresh test host.

The examples check what they show themselves (a ping that must answer, a
path that must be cut) and exit non-zero when it does not hold.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from testhost import TestHost

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.sh"))


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(kernel_session, script):
    host = TestHost("example")
    try:
        venv_bin = os.path.dirname(sys.executable)  # where the venv's cnet console script is
        result = host.run(["env", f"PATH={venv_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}", "bash", str(script)],
                          timeout=300)
        assert result.returncode == 0, f"{script.name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    finally:
        host.close()
