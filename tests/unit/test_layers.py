"""The package's layers (docs/architecture.md): one installed name, and arrows that run one way."""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
STAGE_FOLDERS = ("producers", "streams", "delivery", "schemas")


def test_the_import_contract_holds():
    """`lint-imports` reads the contract in pyproject.toml: shell > stages > subscriptions >
    schemas > core. An import that runs the wrong way fails here, naming the line."""
    lint = shutil.which("lint-imports", path=str(pathlib.Path(sys.executable).parent))
    assert lint, "import-linter is not installed (it is in the dev extra)"
    run = subprocess.run([lint, "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "1 kept, 0 broken" in run.stdout


def test_the_contract_is_not_vacuous():
    """The contract names every subpackage of hookstream, so a new one cannot slip past it."""
    text = (REPO / "pyproject.toml").read_text()
    layered = set(re.findall(r"hookstream\.(\w+)", text.split("[tool.importlinter]", 1)[1]))
    subpackages = {p.name for p in (REPO / "hookstream").iterdir() if (p / "__init__.py").exists()}
    assert subpackages == layered, f"not in the contract: {subpackages - layered}; gone: {layered - subpackages}"


def test_the_stage_folders_are_the_hookstream_subpackages():
    for name in STAGE_FOLDERS:
        link = REPO / "hookstream" / name
        assert link.is_symlink() and link.resolve() == REPO / name, f"hookstream/{name} should link to ../{name}"


def test_no_generic_top_level_module_is_importable_or_imported():
    """Only `hookstream` is installed: outside the source tree, `import delivery` fails."""
    code = ("import importlib.util as u, sys; "
            f"print([n for n in {STAGE_FOLDERS!r} if u.find_spec(n)]); import hookstream.delivery.worker")
    run = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
    bare = re.compile(rf"^\s*(from|import)\s+({'|'.join(STAGE_FOLDERS)})\b", re.M)
    offenders = []
    for path in REPO.rglob("*.py"):
        rel = path.relative_to(REPO)
        if rel.parts[0] in {".venv", "build"} or rel.parts[:2] in {("hookstream", n) for n in STAGE_FOLDERS}:
            continue
        if bare.search(path.read_text(errors="replace")):
            offenders.append(str(rel))
    assert offenders == [], f"import the stages as hookstream.<stage>: {offenders}"
