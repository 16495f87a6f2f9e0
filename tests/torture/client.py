"""A torture client process: appends forever, logging what it sent and what was acknowledged.

Each line of the log is ``SENT <hash>`` (written before the call) or ``ACK <hash> <lsn>``
(written after the acknowledgement), flushed at once, so a SIGKILL of anything loses no line that
matters. UNAVAILABLE and deadline errors are retried: the writer is killed and restarted under
us on purpose.

    python -m tests.torture.client --target HOST:PORT --log FILE --seed N
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import time
from pathlib import Path

import grpc

from stemedb import canonical
from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import writer_pb2 as wpb
from stemedb.v1 import writer_pb2_grpc


def _record(rng: random.Random, tag: str, n: int) -> pb.Record:
    a = pb.Assertion(
        subject=f"torture:{tag}:{n}",
        predicate=rng.choice(["is", "has", "near"]),
        object=pb.Value(number=rng.random()) if rng.random() < 0.5 else pb.Value(text=f"v{n}"),
        confidence=rng.random(),
        source_hash=canonical.content_hash(f"{tag}/{n}".encode()),
    )
    return pb.Record(assertion=a)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--target", required=True)
    p.add_argument("--log", required=True, type=Path)
    p.add_argument("--seed", type=int, required=True)
    a = p.parse_args()
    rng = random.Random(a.seed)
    stop = False

    def on_term(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    n = 0
    with open(a.log, "a", buffering=1) as log, grpc.insecure_channel(a.target) as ch:
        stub = writer_pb2_grpc.WriterServiceStub(ch)
        while not stop:
            batch = [_record(rng, str(a.seed), n + i) for i in range(rng.choice([1, 1, 1, 5, 20]))]
            n += len(batch)
            hashes = [canonical.record_hash(r) for r in batch]
            for h in hashes:
                log.write(f"SENT {h.hex()}\n")
            try:
                if len(batch) == 1:
                    resp = stub.AppendAssertion(
                        wpb.AppendAssertionRequest(assertion=batch[0].assertion), timeout=5
                    )
                    receipts = [resp.receipt]
                else:
                    receipts = list(
                        stub.AppendBatch(wpb.AppendBatchRequest(records=batch), timeout=5).receipts
                    )
            except grpc.RpcError as exc:
                if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                                  grpc.StatusCode.CANCELLED):  # fmt: skip
                    time.sleep(0.02)
                    continue
                print(f"torture client: unexpected {exc.code()}: {exc.details()}", file=sys.stderr)
                return 1
            for h, r in zip(hashes, receipts, strict=True):
                if r.hash != h:
                    print(
                        "torture client: receipt hash differs from the local hash", file=sys.stderr
                    )
                    return 1
                log.write(f"ACK {h.hex()} {r.lsn}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
