"""The layers of archive/ and flows/: the import contracts of pyproject.toml hold.

`lint-imports` checks them in scripts/check too; here they fail the plain `uv run pytest`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_are_kept():
    # The console script beside this interpreter: the one `uv sync` installed.
    lint_imports = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run(
        [str(lint_imports), "--no-cache", "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


def test_importing_the_core_loads_no_prefect():
    modules = [
        "archive.pipeline.archiver",
        "archive.pipeline.build",
        "archive.app.cli",
        "archive.app.demo",
        "archive.app.prefect_server",
        "archive.index.ledger",
        "archive.store",
        "archive.mime",
        "archive.pop3.client",
    ]
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + ("print(sorted(m for m in sys.modules if m.split('.')[0] == 'prefect'))")
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
