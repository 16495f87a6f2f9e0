"""``stemedb completion bash|zsh`` and ``stemedb --version``: the generated scripts complete real
command lines in real bash and zsh, and cover every command and option of the parser."""

from __future__ import annotations

import argparse
import importlib.metadata
import shutil
import subprocess
from pathlib import Path

import pytest

from stemedb.client._cli import build_parser
from stemedb.client._cli_completion import completion_table
from tests.client.stack import CLI, cli_env, run_cli
from tests.support import missing_tool


def _script(shell: str, tmp_path: Path) -> Path:
    r = run_cli("completion", shell, env=cli_env(tmp_path))
    assert r.returncode == 0, r.stderr
    path = tmp_path / f"stemedb.{shell}"
    path.write_text(r.stdout)
    return path


def _bash_complete(script: Path, line: str, cwd: Path) -> list[str]:
    """What bash offers for the last word of ``line`` (a trailing space: a new, empty word)."""
    words = line.split(" ")
    program = (
        f"source {script}\n"
        f"COMP_WORDS=({' '.join(repr(w) for w in words)})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        '_stemedb\nprintf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", program],
        capture_output=True, text=True, cwd=cwd, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [w for w in done.stdout.splitlines() if w]


# (command line, what must be offered, what must not be)
_CASES = [
    ("stemedb ge", ["get"], ["scan"]),
    ("stemedb ", ["assert", "get", "wal", "completion", "import"], []),
    ("stemedb wal v", ["verify"], ["dump"]),
    ("stemedb get --min", ["--min-lsn"], []),
    ("stemedb --wr", ["--writer", "--writer-tls", "--writer-tls-ca"], ["--store"]),
    ("stemedb --writer 127.0.0.1:1 sc", ["scan"], []),
    ("stemedb epoch E --type ", ["extension", "refinement", "revolution"], []),
    ("stemedb completion ", ["bash", "zsh"], []),
    ("stemedb assert Q p o --image q", ["q42.png"], ["other.txt"]),
    ("stemedb import ", ["q42.png", "other.txt"], []),
    ("stemedb get --min-lsn ", [], ["q42.png", "get"]),
    ("stemedb re", ["resolve"], ["get"]),
    ("stemedb ", ["resolve", "beliefs", "tally", "history", "lenses"], []),
    ("stemedb resolve Q42 name --", ["--lens", "--as-of", "--min-lsn", "--json"], ["--limit"]),
    ("stemedb history Q42 name --l", ["--lens", "--limit"], []),
    ("stemedb vote H 1 --wallet", ["--wallet-key"], []),
]


def _files(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    (work / "q42.png").write_bytes(b"")
    (work / "other.txt").write_text("")
    return work


def test_bash_completion_completes_commands_options_choices_and_files(tmp_path: Path) -> None:
    if shutil.which("bash") is None:
        missing_tool("bash is not installed")
    script, work = _script("bash", tmp_path), _files(tmp_path)
    for line, offered, not_offered in _CASES:
        got = _bash_complete(script, line, work)
        for word in offered:
            assert word in got, (line, got)
        for word in not_offered:
            assert word not in got, (line, got)
    assert "complete -o filenames -F _stemedb stemedb" in script.read_text()


def _zsh_complete(script: Path, line: str, cwd: Path) -> list[str]:
    """What the zsh function offers for ``line``. The function runs in a real zsh; ``compadd``
    and ``_files`` (zsh's completion builtins, usable only inside the line editor) are replaced by
    functions that print what they were given."""
    words = line.split(" ")
    program = (
        "compdef() { :; }\n"
        'compadd() { [[ "$1" == "--" ]] && shift; printf "%s\\n" "$@"; }\n'
        '_files() { printf "%s\\n" *(N); }\n'
        f"source {script}\n"
        f"words=({' '.join(repr(w) for w in words)})\n"
        f"CURRENT={len(words)}\n"
        "_stemedb || true\n"
    )
    done = subprocess.run(
        ["zsh", "-f", "-c", program], capture_output=True, text=True, cwd=cwd, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return [w for w in done.stdout.splitlines() if w]


def test_zsh_completion_completes_the_same_lines(tmp_path: Path) -> None:
    if shutil.which("zsh") is None:
        missing_tool("zsh is not installed (apt-get install zsh)")
    script, work = _script("zsh", tmp_path), _files(tmp_path)
    assert script.read_text().startswith("#compdef stemedb\n")
    for line, offered, not_offered in _CASES:
        prefix = line.split(" ")[-1]
        got = [w for w in _zsh_complete(script, line, work) if w.startswith(prefix)]
        for word in offered:
            assert word in got, (line, got)
        for word in not_offered:
            assert word not in got, (line, got)


def _walk(parser: argparse.ArgumentParser, path: str = "") -> dict[str, set[str]]:
    """The oracle: each command path's long options, read straight off argparse."""
    out = {path: {o for a in parser._actions for o in a.option_strings if o.startswith("--")
                  and a.help != argparse.SUPPRESS}}  # fmt: skip
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                out.update(_walk(child, f"{path} {name}".strip()))
    return out


def test_the_table_covers_every_command_and_option_of_the_parser() -> None:
    parser = build_parser()
    table = completion_table(parser)
    oracle = _walk(parser)
    assert set(table) == set(oracle)
    for path, options in oracle.items():
        assert set(table[path].options) == options, path
    assert "--poll-seconds" not in table["tail"].options  # hidden options stay hidden


def test_version_is_the_package_version(tmp_path: Path) -> None:
    r = subprocess.run([str(CLI), "--version"], capture_output=True, text=True, timeout=30,
                       env=cli_env(tmp_path))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"stemedb {importlib.metadata.version('stemedb')}\n"


def test_completion_of_an_unknown_shell_is_a_usage_error(tmp_path: Path) -> None:
    r = run_cli("completion", "fish", env=cli_env(tmp_path))
    assert r.returncode == 2 and "invalid choice: 'fish'" in r.stderr
    assert r.stderr.count("\n") == 1


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_scripts_parse(shell: str, tmp_path: Path) -> None:
    if shutil.which(shell) is None:
        missing_tool(f"{shell} is not installed")
    script = _script(shell, tmp_path)
    done = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
