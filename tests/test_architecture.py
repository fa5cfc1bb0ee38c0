"""The layer order of docs/architecture.md, as import-linter contracts (``pyproject.toml``,
``[tool.importlinter]``): a back-arrow or an import cycle fails here, naming the import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PYPROJECT = ROOT / "pyproject.toml"


def _lint(src: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the ``invlab`` package found under ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run(
        [sys.executable, "-c", code, "--config", str(PYPROJECT), "--no-cache"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )


def test_the_package_keeps_every_import_contract():
    out = _lint(SRC)
    assert out.returncode == 0, f"import contracts broken:\n{out.stdout[-6000:]}\n{out.stderr[-2000:]}"
    assert "0 broken" in out.stdout


def test_a_back_arrow_and_a_cycle_fail_naming_the_imports(tmp_path):
    copy = tmp_path / "src"
    shutil.copytree(SRC / "invlab", copy / "invlab", ignore=shutil.ignore_patterns("__pycache__"))
    base = copy / "invlab" / "transforms" / "base.py"
    base.write_text(base.read_text() + "\nimport invlab.runs.config  # noqa\n")  # transforms -> runs
    tables = copy / "invlab" / "report" / "tables.py"
    tables.write_text(tables.read_text() + "\nimport invlab.report.plots  # noqa\n")
    plots = copy / "invlab" / "report" / "plots.py"
    plots.write_text(plots.read_text() + "\nimport invlab.report.tables  # noqa\n")  # a cycle in report/
    out = _lint(copy)
    assert out.returncode != 0
    report = " ".join(out.stdout.split())
    assert "invlab.transforms.base -> invlab.runs.config" in report
    assert "No cycles are allowed in invlab.report" in report and ".tables -> .plots" in report
