"""The ``stemedb`` command-line client (console script ``stemedb = stemedb.client.cli:main``).

The commands, their output and the exit codes are documented in docs/cli.md; the implementation
lives in the private ``_cli*`` modules.
"""

from __future__ import annotations

import sys

from stemedb.client._cli import (
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_SERVER,
    EXIT_USAGE,
    build_parser,
    main,
)

__all__ = ["EXIT_NOT_FOUND", "EXIT_OK", "EXIT_SERVER", "EXIT_USAGE", "build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
