"""stemedb.wal: the write-ahead log shared by the writer and the ingestor.

One writer (``Wal``) appends records with durable group commit and publishes the durable LSN in
``WATERMARK``; any number of readers (``WalReader``) tail the log up to that watermark. The
byte-level format and the reasoning behind every fsync are in docs/wal-format.md.
"""

from stemedb.wal._cli import add_wal_commands
from stemedb.wal._config import SyncMode, WalConfig, WalObserver
from stemedb.wal._consumers import (
    ConsumerCheckpoint,
    read_consumer_checkpoints,
    write_consumer_checkpoint,
)
from stemedb.wal._decoder import WalRecord
from stemedb.wal._errors import (
    WalClosed,
    WalCorruption,
    WalDiskFull,
    WalError,
    WalLocked,
    WalOverloaded,
)
from stemedb.wal._log import Wal
from stemedb.wal._reader import WalReader
from stemedb.wal._repair import repair_wal
from stemedb.wal._verify import VerifyReport, dump_wal, verify_wal

__all__ = [
    "ConsumerCheckpoint",
    "SyncMode",
    "VerifyReport",
    "Wal",
    "WalClosed",
    "WalConfig",
    "WalCorruption",
    "WalDiskFull",
    "WalError",
    "WalLocked",
    "WalObserver",
    "WalOverloaded",
    "WalReader",
    "WalRecord",
    "add_wal_commands",
    "dump_wal",
    "read_consumer_checkpoints",
    "repair_wal",
    "verify_wal",
    "write_consumer_checkpoint",
]
