"""Layers point down: the import-linter contracts in pyproject.toml are kept, and they fail on an upward import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
CONTRACTS = ["layers", "library-below-applications", "serve-without-kb-commands"]


def _lint(root: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    """lint-imports on ``root``'s pyproject.toml and ``root/src`` (no cache: a copied tree is a new graph)."""
    args = [str(LINT_IMPORTS), "--no-cache", "--no-logo", *(a for c in contracts for a in ("--contract", c))]
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    return subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module", autouse=True)
def _needs_lint_imports():
    if not LINT_IMPORTS.is_file():
        pytest.fail(f"lint-imports is not installed beside {sys.executable} (pip install import-linter).")


@pytest.mark.parametrize("contract", CONTRACTS)
def test_contract_is_kept(contract):
    result = _lint(ROOT, contract)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory) -> Path:
    """src/omnivec and pyproject.toml copied, for injecting imports the contracts must refuse."""
    root = tmp_path_factory.mktemp("layers")
    shutil.copytree(ROOT / "src" / "omnivec", root / "src" / "omnivec",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def _inject(root: Path, module: str, code: str) -> str:
    """Append ``code`` to ``module``'s file; return the file's previous text (to restore it)."""
    path = root / "src" / Path(*module.split(".")).with_suffix(".py")
    before = path.read_text(encoding="utf-8")
    path.write_text(before + "\n\n" + code + "\n", encoding="utf-8")
    return before


@pytest.mark.parametrize(("module", "code", "contract", "chain"), [
    # An import inside a function counts: modules/ reaching up into models/.
    ("omnivec.modules.normalize", "def _upward():\n    from omnivec.models import embedder  # noqa\n", "layers",
     "omnivec.modules.normalize -> omnivec.models.embedder"),
    # loading/ sits below modules/.
    ("omnivec.loading.hub", "import omnivec.modules.base  # noqa\n", "layers",
     "omnivec.loading.hub -> omnivec.modules.base"),
    # The drop-in façades (omnivec.util, omnivec.losses, ...) re-export train/: the library never imports them.
    ("omnivec.models.embedder", "def _facade():\n    from omnivec.util import cos_sim  # noqa\n", "layers",
     "omnivec.models.embedder -> omnivec.util"),
    # The library never imports an application.
    ("omnivec.runtime.batching", "import omnivec.kb.config  # noqa\n", "library-below-applications",
     "omnivec.runtime.batching -> omnivec.kb.config"),
])
def test_an_upward_import_breaks_the_contract(tree_copy, module, code, contract, chain):
    path = tree_copy / "src" / Path(*module.split(".")).with_suffix(".py")
    before = _inject(tree_copy, module, code)
    try:
        result = _lint(tree_copy, contract)
    finally:
        path.write_text(before, encoding="utf-8")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "BROKEN" in output and chain in output, output
