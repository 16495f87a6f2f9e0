"""Packaging: the public surface is pinned, and the wheel carries every module."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import stemedb

ROOT = Path(__file__).resolve().parent.parent


def test_public_names_are_pinned() -> None:
    assert sorted(stemedb.__all__) == [
        "DEFAULT_LIMITS", "InvalidRecord", "InvalidSignature", "Limits", "StemeError",
        "UntrustedSigner", "__version__", "content_hash", "record_bytes", "record_hash",
        "validate_record",
    ]  # fmt: skip
    for name in stemedb.__all__:
        assert hasattr(stemedb, name)


def _source_packages() -> set[str]:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    mapping: dict[str, str] = cfg["tool"]["setuptools"]["package-dir"]
    found = set()
    for pkg, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([pkg, *rel.parts]) if rel.parts else pkg)
    return found


def test_every_package_is_declared() -> None:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = set(cfg["tool"]["setuptools"]["packages"])
    missing = _source_packages() - declared
    assert not missing, f"packages missing from pyproject's explicit list: {sorted(missing)}"


def _source_modules() -> set[str]:
    """Every module in the source folders, by the names the package-dir mapping gives them."""
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    mapping: dict[str, str] = cfg["tool"]["setuptools"]["package-dir"]
    names = set()
    for pkg, folder in mapping.items():
        for py in (ROOT / folder).rglob("*.py"):
            parts = [pkg, *py.parent.relative_to(ROOT / folder).parts]
            if py.stem != "__init__":
                parts.append(py.stem)
            names.add(".".join(parts))
    return names


@pytest.mark.slow
def test_wheel_installs_and_imports_everything(tmp_path: Path) -> None:
    """Build the wheel, install it into a clean venv, import every module from it."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    # Built from a copy of the checkout's files (tracked, or new and not ignored), as a clean
    # clone would be: setuptools reuses the tree's build/lib, where a module removed from the
    # sources would linger and be packed.
    source = tmp_path / "source"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        origin = ROOT / name
        if origin.is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(source)],
        check=True, env=env, capture_output=True,
    )  # fmt: skip
    wheels = list((tmp_path / "dist").glob("stemedb-*.whl"))
    assert len(wheels) == 1
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    # The dependencies come from the dev venv through a plain path entry (a path line in a .pth
    # file does not process that folder's own .pth files, so the editable install stays out);
    # stemedb itself comes from the wheel alone.
    site_dir = next((venv / "lib").glob("python3*/site-packages"))
    dev_site = next(p for p in sys.path if p.endswith("site-packages"))
    (site_dir / "deps.pth").write_text(dev_site + "\n")
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(wheels[0])],
        check=True, env=env, capture_output=True,
    )  # fmt: skip
    expected = sorted(_source_modules() - {"stemedb"})
    code = (
        "import importlib, pkgutil, stemedb, json\n"
        "assert 'site-packages' in stemedb.__file__ and 'build' not in stemedb.__file__, "
        "stemedb.__file__\n"
        "names = sorted(m.name for m in pkgutil.walk_packages(stemedb.__path__, 'stemedb.'))\n"
        "[importlib.import_module(n) for n in names]\n"
        "print(json.dumps(names))\n"
    )
    out = subprocess.run(
        [str(py), "-c", code], check=True, env=env, capture_output=True, text=True, cwd=tmp_path
    )
    import json

    assert json.loads(out.stdout) == expected
