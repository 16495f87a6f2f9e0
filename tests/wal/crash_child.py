"""Child process for the crash tests: appends from several threads and reports every ack.

Usage: python crash_child.py WAL_DIR SEED SEGMENT_SIZE_BYTES
Prints ``READY`` once the log is open, then one line ``<lsn> <blake3 of payload, hex>`` per
acknowledged record, written with a single os.write (atomic on a pipe) only after the ack.
The parent SIGKILLs this process at a random moment.
"""

from __future__ import annotations

import os
import random
import sys
import threading
from pathlib import Path

from blake3 import blake3

from stemedb.wal import Wal, WalConfig

THREADS = 6


def main() -> None:
    directory = Path(sys.argv[1])
    seed = int(sys.argv[2])
    segment_size_bytes = int(sys.argv[3])
    wal = Wal.open(WalConfig(dir=directory, segment_size_bytes=segment_size_bytes))
    os.write(1, b"READY\n")

    def producer(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        while True:
            batch = [
                (rng.randint(1, 255), rng.randbytes(rng.randint(0, 300)))
                for _ in range(rng.randint(1, 4))
            ]
            lsns = wal.append(batch)
            lines = "".join(
                f"{lsn} {blake3(payload).hexdigest()}\n"
                for lsn, (_type, payload) in zip(lsns, batch, strict=True)
            )
            os.write(1, lines.encode())

    threads = [threading.Thread(target=producer, args=(i,), daemon=True) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main()
