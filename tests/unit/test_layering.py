"""archive/ is the Prefect-free core; the rule is also a ruff TID251 ban in pyproject.toml."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ARCHIVE = Path(__file__).resolve().parents[2] / "archive"


def test_no_module_in_archive_imports_prefect_or_flows():
    offenders = []
    for path in ARCHIVE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                # The CLI is the one place that hands over to flows/, inside its commands.
                if top == "prefect" or (top == "flows" and path.name != "cli.py"):
                    offenders.append(f"{path.relative_to(ARCHIVE.parent)}: {name}")
    assert offenders == []


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
