"""The example plugin package (examples/regsuite-cutout), installed for a test into a folder of
its own, never into the environment the tests run in."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "regsuite-cutout"
DISTRIBUTION = "regsuite-cutout 0.1.0"


def install_example(target: Path) -> Path:
    """``pip install`` a copy of the example package (so that the build leaves nothing in the
    checkout) into ``target``, which a test puts on ``PYTHONPATH`` or ``sys.path``."""
    source = target.parent / f"{target.name}-source"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns(
        "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache"))
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(source)],
        capture_output=True, text=True,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return target
