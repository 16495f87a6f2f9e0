"""``stemedb completion bash|zsh``: shell completion generated from the CLI's own argparse parser.

The parser is walked once into a table, one row per command path (``""``, ``get``, ``wal
verify``...): its subcommands, its options, which options take a file, the fixed choices of an
option, and whether its positional argument is a path. The table is written out as ``case``
statements of a small bash or zsh function, so the script never runs Python while completing,
and a command or option added to the parser is in the next generated script with nothing else to
edit. A test completes real command lines through bash and zsh with the generated scripts.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SHELLS", "completion_script", "completion_table", "register"]

SHELLS = ("bash", "zsh")
# Metavars of options and positionals that name a file or a directory.
_PATH_METAVARS = frozenset({"FILE", "PEM", "DIR", "FILE.jsonl", "PATH"})
_PATH_DESTS = frozenset({"dir", "file", "path"})  # a positional without a metavar, by its name


@dataclass
class CommandRow:
    """What can follow one command path."""

    subcommands: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)
    file_options: list[str] = field(default_factory=list)
    value_options: list[str] = field(default_factory=list)  # take a value that is not a file
    choices: dict[str, list[str]] = field(default_factory=dict)
    path_positional: bool = False


def register(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    p = add("completion", "print a bash or zsh completion script (see docs/cli.md)")
    p.add_argument("shell", choices=SHELLS)
    p.set_defaults(func=_print_script)


def _takes_path(action: argparse.Action) -> bool:
    if action.type is Path or action.metavar in _PATH_METAVARS:
        return True
    return action.metavar is None and action.dest in _PATH_DESTS


_SubParsers = argparse._SubParsersAction  # argparse has no public way to walk its subparsers


def _subparsers(
    parser: argparse.ArgumentParser,
) -> Iterator[_SubParsers[argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield action


def _row(parser: argparse.ArgumentParser) -> CommandRow:
    row = CommandRow()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            row.subcommands.extend(action.choices)
        elif action.help == argparse.SUPPRESS:
            continue
        elif action.option_strings:
            longs = [o for o in action.option_strings if o.startswith("--")]
            names = longs or list(action.option_strings)
            row.options.extend(names)
            if action.nargs == 0:
                continue
            if action.choices is not None:
                for name in names:
                    row.choices[name] = [str(c) for c in action.choices]
            elif _takes_path(action):
                row.file_options.extend(names)
            else:
                row.value_options.extend(names)
        elif _takes_path(action):
            row.path_positional = True
        elif action.choices is not None and not row.subcommands:
            row.subcommands.extend(str(c) for c in action.choices)
    return row


def completion_table(parser: argparse.ArgumentParser) -> dict[str, CommandRow]:
    """Command path (words joined by a space; ``""`` for the top) -> what may follow it."""
    table: dict[str, CommandRow] = {}

    def walk(path: str, node: argparse.ArgumentParser) -> None:
        table[path] = _row(node)
        for sub in _subparsers(node):
            for name, child in sub.choices.items():
                walk(f"{path} {name}".strip(), child)

    walk("", parser)
    return table


def _case(table: dict[str, CommandRow], pick: Callable[[CommandRow], list[str]]) -> str:
    """A shell ``case "$1"`` body mapping each command path to words."""
    lines = []
    for path, row in table.items():
        words = pick(row)
        if words:
            lines.append(f'        "{path}") echo "{" ".join(words)}" ;;')
    return "\n".join(lines)


def _choices_case(table: dict[str, CommandRow]) -> str:
    lines = []
    for path, row in table.items():
        for option, values in row.choices.items():
            lines.append(f'        "{path}|{option}") echo "{" ".join(values)}" ;;')
    return "\n".join(lines)


def _functions(table: dict[str, CommandRow]) -> str:
    """The lookup functions both shells share (POSIX ``case``, no arrays)."""
    return f"""_stemedb_subcommands() {{
    case "$1" in
{_case(table, lambda r: r.subcommands)}
    esac
}}
_stemedb_options() {{
    case "$1" in
{_case(table, lambda r: r.options)}
    esac
}}
_stemedb_file_options() {{
    case "$1" in
{_case(table, lambda r: r.file_options)}
    esac
}}
_stemedb_value_options() {{
    case "$1" in
{_case(table, lambda r: r.value_options)}
    esac
}}
_stemedb_choices() {{
    case "$1" in
{_choices_case(table)}
    esac
}}
_stemedb_path_positional() {{
    case "$1" in
{_case(table, lambda r: ["yes"] if r.path_positional else [])}
    esac
}}
"""


_BASH = """# bash completion for stemedb; generated by `stemedb completion bash`, do not edit.
# Load it with:  source <(stemedb completion bash)
{functions}
_stemedb() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="" cmd_path="" word i
    (( COMP_CWORD > 0 )) && prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    for (( i = 1; i < COMP_CWORD; i++ )); do
        word="${{COMP_WORDS[i]}}"
        case " $(_stemedb_subcommands "$cmd_path") " in
            *" $word "*) cmd_path="${{cmd_path:+$cmd_path }}$word" ;;
        esac
    done
    local values
    values="$(_stemedb_choices "$cmd_path|$prev")"
    if [[ -n "$values" ]]; then
        COMPREPLY=( $(compgen -W "$values" -- "$cur") )
    elif [[ " $(_stemedb_file_options "$cmd_path") " == *" $prev "* && -n "$prev" ]]; then
        COMPREPLY=( $(compgen -f -- "$cur") )
    elif [[ " $(_stemedb_value_options "$cmd_path") " == *" $prev "* && -n "$prev" ]]; then
        COMPREPLY=()
    elif [[ "$cur" == -* ]]; then
        COMPREPLY=( $(compgen -W "$(_stemedb_options "$cmd_path")" -- "$cur") )
    else
        local subs
        subs="$(_stemedb_subcommands "$cmd_path")"
        if [[ -n "$subs" ]]; then
            COMPREPLY=( $(compgen -W "$subs" -- "$cur") )
        elif [[ -n "$(_stemedb_path_positional "$cmd_path")" ]]; then
            COMPREPLY=( $(compgen -f -- "$cur") )
        else
            COMPREPLY=()
        fi
    fi
}}
complete -o filenames -F _stemedb stemedb
"""

# zsh: `path` is tied to PATH there, hence `cmd_path`; `words` is 1-based with the command first.
_ZSH = """#compdef stemedb
# zsh completion for stemedb; generated by `stemedb completion zsh`, do not edit.
# Load it with:  source <(stemedb completion zsh)   (after compinit), or save it as _stemedb
# in a directory of $fpath.
{functions}
_stemedb() {{
    local cur="${{words[CURRENT]}}" prev="${{words[CURRENT-1]}}" cmd_path="" word i
    for (( i = 2; i < CURRENT; i++ )); do
        word="${{words[i]}}"
        case " $(_stemedb_subcommands "$cmd_path") " in
            *" $word "*) cmd_path="${{cmd_path:+$cmd_path }}$word" ;;
        esac
    done
    local values="$(_stemedb_choices "$cmd_path|$prev")"
    if [[ -n "$values" ]]; then
        compadd -- ${{=values}}
    elif [[ -n "$prev" && " $(_stemedb_file_options "$cmd_path") " == *" $prev "* ]]; then
        _files
    elif [[ -n "$prev" && " $(_stemedb_value_options "$cmd_path") " == *" $prev "* ]]; then
        return 1
    elif [[ "$cur" == -* ]]; then
        local opts="$(_stemedb_options "$cmd_path")"
        compadd -- ${{=opts}}
    else
        local subs="$(_stemedb_subcommands "$cmd_path")"
        if [[ -n "$subs" ]]; then
            compadd -- ${{=subs}}
        elif [[ -n "$(_stemedb_path_positional "$cmd_path")" ]]; then
            _files
        else
            return 1
        fi
    fi
}}
if [[ "$funcstack[1]" == "_stemedb" ]]; then
    _stemedb "$@"
else
    compdef _stemedb stemedb
fi
"""


def completion_script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script of ``parser`` for ``shell`` (``bash`` or ``zsh``)."""
    functions = _functions(completion_table(parser))
    if shell == "bash":
        return _BASH.format(functions=functions)
    if shell == "zsh":
        return _ZSH.format(functions=functions)
    raise ValueError(f"shell: {shell!r} is not one of {', '.join(SHELLS)}")


def _print_script(args: argparse.Namespace) -> int:
    from stemedb.client._cli import build_parser

    print(completion_script(build_parser(), args.shell), end="")
    return 0
