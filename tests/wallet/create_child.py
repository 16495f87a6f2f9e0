"""Child process of the SIGKILL-during-key-creation test: creates keys until it is killed.

Prints each key's name once create_key has returned (the key is then durable).
Usage: python create_child.py KEYSTORE_DIR PREFIX
"""

from __future__ import annotations

import sys
from pathlib import Path

from stemedb.wallet import Keystore
from tests.wallet.wallet_testlib import FAST_KDF, PASSPHRASE


def main() -> None:
    directory, prefix = Path(sys.argv[1]), sys.argv[2]
    store = Keystore.open(directory, PASSPHRASE, kdf=FAST_KDF)
    for i in range(10_000):
        info = store.create_key(f"{prefix}{i}")
        print(info.name, flush=True)


if __name__ == "__main__":
    main()
