"""Every route of the gateway against a real writer, ingestor and gateway on loopback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stemedb.client import AgentKey
from tests.gateway.gwstack import GatewayStack, running_gateway, signed_assertion_json, vote_json

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayStack]:
    with running_gateway(tmp_path_factory.mktemp("gw"), "--body-read-seconds", "1") as g:
        yield g


def post(gw: GatewayStack, path: str, body: Any, **kw: Any) -> httpx.Response:
    return httpx.post(gw.url + path, json=body, timeout=30, **kw)


def get(gw: GatewayStack, path: str, **params: Any) -> httpx.Response:
    return httpx.get(gw.url + path, params=params, timeout=30)


def problem(resp: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM), resp.headers
    body: dict[str, Any] = resp.json()
    assert body["status"] == status and body["title"] and body["detail"], body
    if field is not None:
        assert body.get("field") == field, body
    return body


def test_writes_return_receipts_and_read_back(gw: GatewayStack) -> None:
    key = AgentKey.generate()
    body = signed_assertion_json(key, "W1", "name", "first")
    r = post(gw, "/v1/assertions", body)
    assert r.status_code == 201, r.text
    receipt = r.json()["receipt"]
    assert set(receipt) <= {"hash", "lsn", "tree_size"} and len(receipt["hash"]) == 64
    assert isinstance(receipt["lsn"], int) and receipt["lsn"] >= 1
    rec = get(gw, f"/v1/records/{receipt['hash']}", min_lsn=receipt["lsn"])
    assert rec.status_code == 200, rec.text
    assert rec.json()["record"] == {"assertion": body}
    assert rec.json()["applied_lsn"] >= receipt["lsn"]

    # The alias is the same route: the same record gets the same hash and a new LSN.
    again = post(gw, "/assert", body).json()["receipt"]
    assert again["hash"] == receipt["hash"] and again["lsn"] > receipt["lsn"]

    vote = vote_json(key, receipt["hash"], -0.5)
    v = post(gw, "/v1/votes", vote)
    assert v.status_code == 201, v.text
    v2 = post(gw, "/vote", vote_json(AgentKey.generate(), receipt["hash"], 1.0))
    assert v2.status_code == 201, v2.text
    vrec = get(
        gw, f"/v1/records/{v.json()['receipt']['hash']}", min_lsn=v2.json()["receipt"]["lsn"]
    )
    assert vrec.json()["record"] == {"vote": vote}

    epoch = {"name": "physics-1900", "description": "before relativity", "signatures": []}
    e = post(gw, "/v1/epochs", epoch)
    assert e.status_code == 201, e.text
    erec = get(gw, f"/v1/records/{e.json()['receipt']['hash']}", min_lsn=e.json()["receipt"]["lsn"])
    assert erec.json()["record"]["epoch"]["name"] == "physics-1900"
    assert erec.json()["record"]["epoch"]["supersession_type"] == "SUPERSESSION_TYPE_UNSPECIFIED"


def test_batch_receipts_are_consecutive(gw: GatewayStack) -> None:
    key = AgentKey.generate()
    records = [{"assertion": signed_assertion_json(key, "B1", f"p{i}", f"v{i}")} for i in range(5)]
    r = post(gw, "/v1/batch", {"records": records})
    assert r.status_code == 201, r.text
    receipts = r.json()["receipts"]
    assert len(receipts) == 5
    lsns = [x["lsn"] for x in receipts]
    assert lsns == list(range(lsns[0], lsns[0] + 5))
    # all-or-nothing: one bad record writes none of the batch
    bad = [*records[:2], {"assertion": {**records[2]["assertion"], "confidence": 7}}]
    refused = post(gw, "/v1/batch", {"records": bad})
    problem(refused, 400, "records[2].assertion.confidence")
    after = post(gw, "/v1/batch", {"records": records[:1]}).json()["receipts"][0]["lsn"]
    assert after == lsns[-1] + 1, "the refused batch took LSNs"


def test_query_tally_votes_history(gw: GatewayStack) -> None:
    k1, k2 = AgentKey.generate(), AgentKey.generate()
    a = post(gw, "/v1/assertions", signed_assertion_json(k1, "Q9", "capital", "Paris")).json()
    b = post(gw, "/v1/assertions", signed_assertion_json(k2, "Q9", "capital", "Lyon")).json()
    ha, hb = a["receipt"]["hash"], b["receipt"]["hash"]
    voters = [AgentKey.generate() for _ in range(4)]
    last = 0
    for v in voters[:3]:
        last = post(gw, "/v1/votes", vote_json(v, ha, 1.0)).json()["receipt"]["lsn"]
    last = post(gw, "/v1/votes", vote_json(voters[3], hb, 1.0)).json()["receipt"]["lsn"]

    q = get(gw, "/v1/query", subject="Q9", predicate="capital", min_lsn=last)
    assert q.status_code == 200, q.text
    res = q.json()["resolution"]
    assert res["status"] == "STATUS_RESOLVED" and res["lens"] == "consensus"
    assert res["winner"]["hash"] == ha
    assert res["winner"]["assertion"]["object"] == {"text": "Paris"}
    assert {c["assertion_hash"] for c in res["candidates"]} == {ha, hb}
    assert res["as_of_lsn"] == q.json()["applied_lsn"] >= last
    assert get(gw, "/query", subject="Q9", predicate="capital", min_lsn=last).json() == q.json()

    # The signer endorses with its confidence (0.9), each voter with its weight (DESIGN 9.1).
    tally = get(gw, f"/v1/assertions/{ha}/tally", min_lsn=last)
    assert tally.status_code == 200, tally.text
    t = tally.json()["tally"]
    assert t["assertion_hash"] == ha
    assert t["support"] == pytest.approx(3.9) and t["dispute"] == 0
    assert t["supporters"] == 4 and t["votes"] == 3

    votes = get(gw, f"/v1/assertions/{ha}/votes", min_lsn=last).json()
    assert sorted(v["vote"]["agent_id"] for v in votes["votes"]) == sorted(
        k.public_key_hex for k in voters[:3]
    )
    assert all(len(v["hash"]) == 64 and v["vote"]["weight"] == 1.0 for v in votes["votes"])

    subject = get(gw, "/v1/subjects/Q9", lens="recent", min_lsn=last).json()
    assert [r["predicate"] for r in subject["resolutions"]] == ["capital"]
    assert subject["resolutions"][0]["lens"] == "recent"
    assert subject["resolutions"][0]["winner"]["hash"] == hb  # last writer wins

    skeptic = get(gw, "/v1/query", subject="Q9", predicate="capital", lens="skeptic").json()
    assert skeptic["resolution"]["lens"] == "skeptic"

    history = get(gw, "/v1/history", subject="Q9", predicate="capital").json()
    assert history["entries"], history
    assert history["entries"][0]["lsn"] == a["receipt"]["lsn"]
    assert history["entries"][0]["winner_hash"] == ha
    assert [e["lsn"] for e in history["entries"]] == sorted(e["lsn"] for e in history["entries"])

    # as_of_lsn: the answer as it was when only the first assertion existed
    then = get(gw, "/v1/query", subject="Q9", predicate="capital", as_of_lsn=a["receipt"]["lsn"])
    assert then.status_code == 200, then.text
    assert [c["assertion_hash"] for c in then.json()["resolution"]["candidates"]] == [ha]
    assert then.json()["resolution"]["as_of_lsn"] == a["receipt"]["lsn"]

    lenses = get(gw, "/v1/lenses").json()
    assert {"consensus", "skeptic", "recent"} <= {x["name"] for x in lenses["lenses"]}


def test_unknown_subject_is_an_empty_list(gw: GatewayStack) -> None:
    r = get(gw, "/v1/subjects/no such subject/with a slash")
    assert r.status_code == 200, r.text
    assert r.json()["resolutions"] == [] and r.json()["next_page_token"] == ""


def test_a_subject_with_a_newline_is_an_empty_list_not_404(gw: GatewayStack) -> None:
    """Found by make fuzz's schemathesis run: a newline in the subject was 404 "no route" (an
    answer the route does not declare). No record can have such a subject (the writer refuses
    control characters), so it is the empty list of any unknown subject."""
    r = get(gw, "/v1/subjects/line%0Abreak")
    assert r.status_code == 200, r.text
    assert r.json()["resolutions"] == [] and r.json()["next_page_token"] == ""


def test_refusals_are_problem_json_naming_the_field(gw: GatewayStack) -> None:
    key = AgentKey.generate()
    good = signed_assertion_json(key, "E1", "p", "v")
    problem(post(gw, "/v1/assertions", {**good, "confidence": 1.5}), 400, "assertion.confidence")
    problem(post(gw, "/v1/assertions", {**good, "confidence": "high"}), 400, "assertion.confidence")
    problem(post(gw, "/v1/assertions", {**good, "source_hash": "zz"}), 400, "assertion.source_hash")
    problem(post(gw, "/v1/assertions", [1, 2]), 400, "assertion")
    bad_sig = {**good, "signatures": [{**good["signatures"][0], "signature": "00" * 64}]}  # type: ignore[index]
    body = problem(post(gw, "/v1/assertions", bad_sig), 400)
    assert (
        body["field"].startswith("assertion.signatures[0]")
        and body["grpc_status"] == "INVALID_ARGUMENT"
    )
    unsigned_vote = {"assertion_hash": "ab" * 32, "agent_id": key.public_key_hex, "weight": 1}
    assert problem(post(gw, "/v1/votes", unsigned_vote), 400)["field"].startswith("vote.")
    r = httpx.post(gw.url + "/v1/assertions", content=b"{not json", timeout=10)
    problem(r, 400, "body")
    problem(httpx.post(gw.url + "/v1/assertions", timeout=10), 400, "body")
    problem(post(gw, "/v1/assertions", {**good, "confidence": 10**400}), 400, "assertion")
    deep = b"[" * 200_000 + b"]" * 200_000
    problem(httpx.post(gw.url + "/v1/assertions", content=deep, timeout=30), 400, "body")
    huge = {"records": [{"vote": {"assertion_hash": "00" * 32, "weight": 10**400}}]}
    problem(post(gw, "/v1/batch", huge), 400, "records[0]")
    problem(post(gw, "/v1/batch", {"records": []}), 400, "records")
    problem(post(gw, "/v1/batch", {"records": [{"thing": {}}]}), 400, "records[0]")
    problem(
        post(gw, "/v1/assertions", good, headers={"X-Stemedb-Key": "alice"}), 400, "X-Stemedb-Key"
    )
    problem(get(gw, "/v1/query", predicate="p"), 400, "subject")
    problem(get(gw, "/v1/query", subject="E1"), 400, "predicate")
    problem(get(gw, "/v1/query", subject="E1", predicate="p", min_lsn="-1"), 400, "min_lsn")
    problem(get(gw, "/v1/query", subject="E1", predicate="p", lens="nope"), 400)
    problem(get(gw, "/v1/query", subject="E1", predicate="p", as_of_lsn=10**12), 400)
    problem(get(gw, "/v1/records/xyz"), 400, "hash")
    problem(get(gw, "/v1/records/" + "0" * 64), 404, "hash")
    problem(get(gw, f"/v1/assertions/{'0' * 64}/tally"), 404, "hash")
    problem(get(gw, "/v1/nothing-here"), 404)
    problem(httpx.delete(gw.url + "/v1/batch", timeout=10), 405)
    # nothing of the refused writes reached the log
    assert get(gw, "/v1/subjects/E1").json()["resolutions"] == []


def test_deadline_becomes_504(gw: GatewayStack) -> None:
    start = time.monotonic()
    r = httpx.get(
        gw.url + "/v1/query",
        params={"subject": "D", "predicate": "p", "min_lsn": 10**15},
        headers={"X-Stemedb-Timeout": "0.3"},
        timeout=30,
    )
    body = problem(r, 504)
    assert body["grpc_status"] == "DEADLINE_EXCEEDED" and body["backend"] == "store"
    assert time.monotonic() - start < 5
    problem(
        httpx.get(gw.url + "/v1/lenses", headers={"X-Stemedb-Timeout": "soon"}),
        400,
        "X-Stemedb-Timeout",
    )


def test_declared_body_over_the_limit_is_413_before_it_is_sent(gw: GatewayStack) -> None:
    port = int(gw.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 17000000\r\n\r\n"
        )
        reply = b""
        while b"}" not in reply:  # the problem document ends the reply
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
    text = reply.decode()
    assert text.startswith("HTTP/1.1 413"), text
    assert PROBLEM in text and "16777216" in text


def test_slow_body_is_408(gw: GatewayStack) -> None:
    port = int(gw.url.rsplit(":", 1)[1])
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(
            b"POST /v1/assertions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"subject": '
        )  # and then nothing more
        reply = b""
        while b"}" not in reply:
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
    text = reply.decode()
    assert text.startswith("HTTP/1.1 408"), text
    assert PROBLEM in text and "did not arrive within 1 seconds" in text
    assert time.monotonic() - start < 10


def test_streamed_body_over_the_limit_is_413(gw: GatewayStack) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"records": ["'
        for _ in range(17):
            yield b"x" * (1024 * 1024)

    r = httpx.post(gw.url + "/v1/batch", content=chunks(), timeout=60)
    problem(r, 413)


def test_metrics_are_promtool_clean(gw: GatewayStack) -> None:
    get(gw, "/v1/records/" + "1" * 64)
    text = httpx.get(gw.url + "/metrics", timeout=10).text
    assert (
        'stemedb_gateway_http_requests_total{code="404",method="GET",route="/v1/records/{hash}"}'
        in text
    )
    assert "stemedb_gateway_http_request_duration_seconds_bucket" in text
    assert "stemedb_gateway_backend_errors_total" in text
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing (make promtool); CI is set")
        pytest.skip("promtool is not installed (make promtool)")
    out = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert out.returncode == 0 and not out.stdout.strip() and not out.stderr.strip(), out


def test_healthz_and_docs(gw: GatewayStack) -> None:
    h = httpx.get(gw.url + "/healthz", timeout=10)
    assert h.status_code == 200 and h.json() == {
        "status": "ok",
        "backends": {"writer": "SERVING", "store": "SERVING"},
    }
    docs = httpx.get(gw.url + "/docs", timeout=10)
    assert docs.status_code == 200 and "/v1/assertions/{hash}/tally" in docs.text
    page = httpx.get(gw.url + "/", timeout=10)
    assert page.status_code == 200 and "StemeDB explorer" in page.text
    assert httpx.get(gw.url + "/static/explorer.js", timeout=10).status_code == 200


def test_flags_from_environment_backend_down_and_sigterm(tmp_path: Path) -> None:
    from tests.gateway.gwstack import GATEWAY
    from tests.support import free_port, wait_until

    port, dead = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEMEDB_")}
    env.update(
        {
            "STEMEDB_LISTEN": f"127.0.0.1:{port}",
            "STEMEDB_WRITER": f"127.0.0.1:{dead}",
            "STEMEDB_STORE": f"127.0.0.1:{dead}",
            "STEMEDB_REQUEST_TIMEOUT": "2",
        }
    )
    log = open(tmp_path / "gw.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([str(GATEWAY)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return httpx.get(url + "/healthz", timeout=5).status_code > 0
            except httpx.HTTPError:
                assert proc.poll() is None, (tmp_path / "gw.log").read_text()
                return False

        wait_until(up, 30, "the gateway on STEMEDB_LISTEN")
        h = httpx.get(url + "/healthz", timeout=10)
        assert h.status_code == 503
        assert h.json()["backends"] == {"writer": "UNREACHABLE", "store": "UNREACHABLE"}
        r = httpx.post(
            url + "/v1/assertions",
            json=signed_assertion_json(AgentKey.generate(), "S", "p", "v"),
            timeout=30,
        )
        body = problem(r, 503)
        assert body["backend"] == "writer" and body["grpc_status"] == "UNAVAILABLE"
        body = problem(httpx.get(url + "/v1/subjects/S", timeout=30), 503)
        assert body["backend"] == "store"
        for path in ("/v1/query", "/query"):
            q = httpx.get(url + path, params={"subject": "S", "predicate": "p"}, timeout=30)
            body = problem(q, 503)
            assert body["backend"] == "store" and body["grpc_status"] == "UNAVAILABLE", body
            assert "the store is unavailable" in body["detail"], body
    finally:
        proc.terminate()
        code = proc.wait(timeout=30)
        log.close()
    assert code == 0, (tmp_path / "gw.log").read_text()
    assert "gateway stopped" in (tmp_path / "gw.log").read_text()


def test_a_backend_that_never_answers_is_504_within_the_deadline(tmp_path: Path) -> None:
    """The ingestor's port accepts connections and says nothing (a hung process, a black-holed
    path): /v1/query answers 504 by its deadline, /healthz 503 by its own bound."""
    from tests.gateway.gwstack import Gateway
    from tests.support import free_port

    port = free_port()
    silent = socket.create_server(("127.0.0.1", port))  # the kernel accepts; nobody answers
    try:
        g = Gateway(tmp_path / "gw.log", "--writer", f"127.0.0.1:{port}",
                    "--store", f"127.0.0.1:{port}")  # fmt: skip
        try:
            g.wait_listening()
            start = time.monotonic()
            r = httpx.get(
                g.url + "/v1/query",
                params={"subject": "S", "predicate": "p"},
                headers={"X-Stemedb-Timeout": "1"},
                timeout=30,
            )
            body = problem(r, 504)
            assert body["grpc_status"] == "DEADLINE_EXCEEDED" and body["backend"] == "store"
            assert time.monotonic() - start < 10
            start = time.monotonic()
            h = httpx.get(g.url + "/healthz", timeout=30)
            assert h.status_code == 503 and time.monotonic() - start < 10, h.text
            assert h.json()["backends"] == {"writer": "UNREACHABLE", "store": "UNREACHABLE"}
        finally:
            g.kill()
    finally:
        silent.close()


def test_bad_flags_exit_2_naming_the_flag() -> None:
    from tests.gateway.gwstack import GATEWAY

    env = {k: v for k, v in os.environ.items() if not k.startswith("STEMEDB_")}
    for argv, words in [
        (["--tls-cert", "c.pem"], "--tls-key"),
        (["--listen", "nowhere"], "--listen"),
        (["--request-timeout", "0"], "--request-timeout"),
        (["--body-bytes-max", "-5"], "--body-bytes-max"),
    ]:
        out = subprocess.run(
            [str(GATEWAY), *argv], env=env, capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 2 and words in out.stderr, (argv, out.stderr)
    bad_env = {**env, "STEMEDB_REQUEST_TIMEOUT": "soon"}
    out = subprocess.run([str(GATEWAY)], env=bad_env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "STEMEDB_REQUEST_TIMEOUT" in out.stderr, out.stderr


def test_sigterm_lets_requests_in_flight_finish(tmp_path: Path) -> None:
    import threading

    with running_gateway(tmp_path) as g:
        answers: list[httpx.Response] = []
        # A read waiting for an LSN that never comes is in flight for its 2 s deadline.
        t = threading.Thread(
            target=lambda: answers.append(
                httpx.get(
                    g.url + "/v1/query",
                    params={"subject": "s", "predicate": "p", "min_lsn": 10**12},
                    headers={"X-Stemedb-Timeout": "2"},
                    timeout=30,
                )
            )
        )
        t.start()

        def reached_the_ingestor() -> bool:
            text = httpx.get(f"http://{g.stack.ingestor.metrics}/metrics", timeout=5).text
            return any(
                line.startswith("grpc_server_started_total{")
                and 'grpc_method="Resolve"' in line
                and not line.endswith(" 0.0")
                for line in text.splitlines()
            )

        from tests.support import wait_until

        wait_until(reached_the_ingestor, 10, "the slow request to reach the ingestor")
        assert t.is_alive(), "the request should still be waiting for its LSN"
        code = g.gateway.terminate()
        t.join(timeout=30)
        assert code == 0, g.gateway.log_text()
        assert answers and answers[0].status_code == 504, answers
        assert answers[0].json()["grpc_status"] == "DEADLINE_EXCEEDED"
