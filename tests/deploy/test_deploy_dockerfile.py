"""deploy/Dockerfile, checked without a Docker engine (none runs on these machines).

The instructions are parsed and held to what the image needs; the builder stage's COPY set is
turned into a build context of its own and built into a wheel, as `pip wheel .` in the image
would.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from deploy_catalog import DEPLOY, REPO, missing

DOCKERFILE = DEPLOY / "Dockerfile"
SCRIPTS = ("stemedb-writer", "stemedb-ingestor")


@dataclass
class Instruction:
    op: str
    args: str


@dataclass
class Stage:
    base: str
    name: str | None
    body: list[Instruction]

    def ops(self, op: str) -> list[str]:
        return [i.args for i in self.body if i.op == op]


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with line continuations joined."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    assert not pending, "dangling line continuation"

    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in lines:
        op, _, rest = line.partition(" ")
        op, rest = op.upper(), rest.strip()
        if op == "FROM":
            words = rest.split()
            base = words[0]
            for key, value in args.items():
                base = base.replace("${" + key + "}", value)
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            assert len(words) in (1, 3), line
            stages.append(Stage(base, name, []))
        elif not stages:
            assert op == "ARG", f"only ARG may precede FROM: {line}"
            key, _, default = rest.partition("=")
            args[key] = default
        else:
            stages[-1].body.append(Instruction(op, rest))
    return args, stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse(DOCKERFILE.read_text())[1]


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def test_multi_stage_from_python_slim(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    builder, runtime = stages[0], stages[-1]
    assert builder.name == "builder" and builder.base == "python:3.11-slim"
    assert runtime.base == "python:3.11-slim"
    builder_steps = " ".join(builder.ops("RUN"))
    assert "python -m venv /opt/stemedb" in builder_steps
    assert "pip wheel" in builder_steps and "pip install /wheels/" in builder_steps
    copies = runtime.ops("COPY")
    assert "--from=builder /opt/stemedb /opt/stemedb" in copies
    # The runtime stage copies nothing from the build context: only the venv.
    assert all(c.startswith("--from=") for c in copies)


def test_runs_as_non_root_with_the_uid_of_the_manifests(stages: list[Stage]) -> None:
    users = stages[-1].ops("USER")
    assert users, "the runtime stage sets USER"
    user = users[-1].split(":")
    assert user == ["10001", "10001"], "numeric, so runAsNonRoot can check it"
    # No instruction after USER could switch back to root.
    body = stages[-1].body
    last_user = max(i for i, ins in enumerate(body) if ins.op == "USER")
    assert {ins.op for ins in body[last_user + 1 :]} <= {"ENTRYPOINT", "CMD", "LABEL"}


def test_entrypoint_and_cmd_name_the_console_scripts(stages: list[Stage]) -> None:
    runtime = stages[-1]
    (entrypoint,) = runtime.ops("ENTRYPOINT")
    (cmd,) = runtime.ops("CMD")
    assert exec_form(entrypoint) == ["/usr/bin/tini", "--"]
    assert exec_form(cmd) == ["stemedb-writer"]
    assert "ENV PATH=/opt/stemedb/bin:$PATH" in " ".join("ENV " + e for e in runtime.ops("ENV"))
    # The builder proves both scripts were installed.
    builder_steps = " ".join(stages[0].ops("RUN"))
    for script in SCRIPTS:
        assert f"/opt/stemedb/bin/{script} --help" in builder_steps
    exposed = {int(p) for e in runtime.ops("EXPOSE") for p in e.split()}
    assert exposed == {50051, 50052, 9101, 9102}


def copied_sources(stages: list[Stage]) -> list[str]:
    sources = []
    for copy in stages[0].ops("COPY"):
        words = [w for w in copy.split() if not w.startswith("--")]
        sources.extend(words[:-1])
    return sources


def test_builder_copies_everything_the_package_is_built_from(stages: list[Stage]) -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    needed = {"pyproject.toml", pyproject["project"]["readme"]}
    needed |= set(pyproject["tool"]["setuptools"]["package-dir"].values())
    sources = set(copied_sources(stages))
    for path in needed:
        assert any(path == s or path.startswith(s.rstrip("/") + "/") for s in sources), path


def test_dockerignore_keeps_local_state_out() -> None:
    ignored = set((DEPLOY / "Dockerfile.dockerignore").read_text().split())
    assert {".git", ".venv", "data", "build", "**/__pycache__"} <= ignored


def test_builder_context_builds_a_wheel_with_the_console_scripts(
    stages: list[Stage], tmp_path: Path
) -> None:
    """What `pip wheel .` does in the builder, on a context holding only the COPY sources."""
    sources = copied_sources(stages)
    absent = [s for s in sources if not (REPO / s).exists()]
    if absent:
        missing(f"the image copies {absent}, not in the repository")
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"].get("scripts", {})
    undeclared = sorted(set(SCRIPTS) - set(scripts))
    if undeclared:
        missing(f"the image runs {undeclared}, not in pyproject.toml [project.scripts]")

    context = tmp_path / "src"
    for source in sources:
        src, dst = REPO / source, context / source
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"),
            *("--wheel-dir", str(tmp_path / "wheels"), str(context)),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "wheels").glob("stemedb-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        entry_points = next(n for n in zf.namelist() if n.endswith("entry_points.txt"))
        text = zf.read(entry_points).decode()
        for script in SCRIPTS:
            assert f"{script} = " in text
        assert any(n.startswith("stemedb/writer/") for n in zf.namelist())
        assert any(n.startswith("stemedb/ingestor/") for n in zf.namelist())
