"""A real Prometheus (Debian's package) scrapes both services on loopback during a short load;
PromQL through its HTTP API returns the expected counters; `promtool check metrics` is clean."""

from __future__ import annotations

import json
import subprocess
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

import grpc
import pytest

from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import writer_pb2 as wpb
from stemedb.v1 import writer_pb2_grpc
from tests.deploy.deploy_catalog import require_tool
from tests.support import Service, free_port, start_ingestor, start_writer, wait_until
from tests.writer.records import assertion


def _need(tool: str) -> str:
    """The tool's path; without it the test skips locally and fails under CI=true."""
    return require_tool(tool, "`make promtool` installs Debian's prometheus package")


def _metrics_text(svc: Service) -> str:
    with urllib.request.urlopen(f"http://{svc.metrics}/metrics", timeout=5) as resp:
        body: bytes = resp.read()
    return body.decode()


def _query(base: str, promql: str) -> list[dict[str, object]]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as resp:
        doc = json.loads(resp.read())
    assert doc["status"] == "success", doc
    result: list[dict[str, object]] = doc["data"]["result"]
    return result


def _value(base: str, promql: str) -> float | None:
    result = _query(base, promql)
    if not result:
        return None
    value = result[0]["value"]
    assert isinstance(value, list)
    return float(value[1])


def test_real_prometheus_scrapes_both_services(tmp_path: Path) -> None:
    prometheus = _need("prometheus")
    promtool = _need("promtool")
    writer = start_writer(tmp_path / "wal")
    ingestor = start_ingestor(tmp_path / "wal", tmp_path / "db")
    prom_port = free_port()
    prom_dir = Path(tempfile.mkdtemp(prefix="stemedb-prom-", dir=tmp_path))
    config = prom_dir / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        f"  - job_name: stemedb-writer\n    static_configs:\n"
        f"      - targets: ['{writer.metrics}']\n"
        f"  - job_name: stemedb-ingestor\n    static_configs:\n"
        f"      - targets: ['{ingestor.metrics}']\n"
    )
    prom_log = open(prom_dir / "prometheus.log", "wb")  # noqa: SIM115
    prom = subprocess.Popen(
        [prometheus, f"--config.file={config}", f"--storage.tsdb.path={prom_dir / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=prom_log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{prom_port}"
    try:
        writer.wait_ready()
        ingestor.wait_ready()
        acked = 0
        with grpc.insecure_channel(writer.listen) as ch:
            stub = writer_pb2_grpc.WriterServiceStub(ch)
            for i in range(30):
                stub.AppendAssertion(
                    wpb.AppendAssertionRequest(assertion=assertion(f"p{i}")), timeout=10
                )
                acked += 1
            resp = stub.AppendBatch(
                wpb.AppendBatchRequest(
                    records=[pb.Record(assertion=assertion(f"b{i}")) for i in range(70)]
                ),
                timeout=10,
            )
            acked += len(resp.receipts)
            with pytest.raises(grpc.RpcError):
                stub.AppendAssertion(
                    wpb.AppendAssertionRequest(assertion=pb.Assertion(subject="x")), timeout=10
                )

        def scraped() -> bool:
            try:
                ok = _value(base, 'sum(stemedb_writer_records_total{outcome="ok"})')
                applied = _value(base, "max(stemedb_ingestor_applied_lsn)")
            except OSError:
                return False
            return ok == acked and applied == acked

        wait_until(scraped, 60, "Prometheus to scrape the acknowledged and applied counts")
        assert _value(base, 'sum(stemedb_writer_records_total{outcome="invalid"})') == 1
        handled = _value(
            base,
            'sum(grpc_server_handled_total{job="stemedb-writer",grpc_method="AppendAssertion",'
            'grpc_code="InvalidArgument"})',
        )
        assert handled == 1
        up = _query(base, "up")
        assert {r["metric"]["job"] for r in up} == {"stemedb-writer", "stemedb-ingestor"}  # type: ignore[index]
        assert all(r["value"][1] == "1" for r in up)  # type: ignore[index]
        for svc in (writer, ingestor):
            check = subprocess.run(
                [promtool, "check", "metrics"], input=_metrics_text(svc), text=True,
                capture_output=True,
            )  # fmt: skip
            assert check.returncode == 0, check.stdout + check.stderr
            assert check.stdout.strip() == "" and check.stderr.strip() == "", (
                check.stdout + check.stderr
            )
    finally:
        prom.terminate()
        prom.wait(timeout=30)
        prom_log.close()
        writer.kill()
        ingestor.kill()
