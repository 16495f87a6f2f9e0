"""The import progress output: a bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import io

from stemedb.client._cli_import import Progress, Stats


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_on_a_terminal() -> None:
    stream = _Tty()
    stats = Stats(records=500, lines_read=500)
    p = Progress(stream, 1000, enabled=True)
    p.update(stats)
    p.update(stats, final=True)
    text = stream.getvalue()
    assert text.startswith("\r[###############               ]  50% 500/1,000 lines")
    assert text.endswith("\n") and text.count("\n") == 1


def test_plain_lines_otherwise_and_nothing_when_disabled() -> None:
    stream = io.StringIO()
    Progress(stream, None, enabled=True).update(Stats(records=3, lines_read=4), final=True)
    assert stream.getvalue().startswith("import: 4 lines, 3 records sent")
    quiet = io.StringIO()
    Progress(quiet, 10, enabled=False).update(Stats(), final=True)
    assert quiet.getvalue() == ""
