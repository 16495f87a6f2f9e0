"""The curl quick start of docs/gateway.md, run verbatim against a real stack."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.gateway.gwstack import running_gateway
from tests.support import ROOT

MARKER = "<!-- test: curl-quickstart"


def quickstart_block(doc: str = "docs/gateway.md") -> str:
    text = (ROOT / doc).read_text()
    after = text[text.index(MARKER) :]
    match = re.search(r"```sh\n(.*?)```", after, re.S)
    assert match, "the curl block is missing from docs/gateway.md"
    return match.group(1)


@pytest.mark.parametrize("doc", ["docs/gateway.md", "README.md"])
def test_curl_quickstart_verbatim(tmp_path: Path, doc: str) -> None:
    if shutil.which("curl") is None:
        pytest.fail("curl is not installed")
    block = quickstart_block(doc)
    with running_gateway(tmp_path) as gw:
        out = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            env={"GW": gw.url, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert len(lines) == 4, out.stdout
    receipt, query, subject, refusal = lines
    assert receipt["receipt"]["lsn"] == 1 and len(receipt["receipt"]["hash"]) == 64
    res = query["resolution"]
    assert res["status"] == "STATUS_RESOLVED" and res["lens"] == "recent"
    assert res["winner"]["hash"] == receipt["receipt"]["hash"]
    assert res["winner"]["assertion"]["object"] == {"text": "Douglas Adams"}
    assert [r["predicate"] for r in subject["resolutions"]] == ["name"]
    assert subject["resolutions"][0]["status"] == "STATUS_UNCERTAIN"  # unsigned: nobody endorses
    assert refusal["status"] == 400 and refusal["field"] == "assertion.confidence"
