"""The import contracts (pyproject.toml, [tool.importlinter]; docs/architecture.md) hold, and they fail
when a forbidden import is added: each check below copies the tree, adds one import that breaks one
contract, and expects lint-imports to name that contract."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is in the dev extra")


def lint_imports(tree: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=tree, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """A copy of the three packages and the configuration, to break on purpose."""
    copy = tmp_path_factory.mktemp("tree")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("arena", "ratings", "backends"):
        shutil.copytree(ROOT / package, copy / package, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


def test_the_contracts_hold_on_the_tree():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.lower().replace("0 broken", "")


@pytest.mark.parametrize(
    ("module", "added_import", "contract"),
    [
        ("ratings/bt.py", "import django.db", "The rating engine is pure"),
        ("backends/base.py", "from arena import models", "The backends are a library"),
        ("arena/services/votes.py", "from arena.web import views", "Services and domain apps import no interface"),
        ("arena/leaderboards/aggregation.py", "from arena.services import votes", "The rooms of arena in layers"),
        ("arena/api/voting.py", "from arena.web import views", "The rooms of arena in layers"),
        # hidden in a function, as the old cycles were: still an import
        ("arena/core/errors.py", "def _f():\n    from arena import models", "No import cycles"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(tree: Path, module: str, added_import: str, contract: str):
    path = tree / module
    original = path.read_text()
    path.write_text(original + "\n\n" + added_import + "\n")
    try:
        result = lint_imports(tree)
    finally:
        path.write_text(original)
    assert result.returncode == 1, result.stdout
    broken = [line for line in result.stdout.splitlines() if line.endswith("BROKEN")]
    # (an upward import also closes a cycle, so a second contract may break with the named one)
    assert any(line.startswith(contract) for line in broken), result.stdout
