"""One error-to-status table shape for every service.

A :class:`StatusTable` maps domain error classes to gRPC status codes. An error takes the code of
the nearest class in its MRO that the table lists, so a table reads as a plain mapping and the
order of its entries does not matter; an error that no listed class covers is INTERNAL.
"""

from __future__ import annotations

from collections.abc import Mapping

import grpc

__all__ = ["StatusTable"]


class StatusTable:
    """Domain error class -> gRPC status code, looked up along the error's MRO."""

    def __init__(
        self,
        codes: Mapping[type[BaseException], grpc.StatusCode],
        default: grpc.StatusCode = grpc.StatusCode.INTERNAL,
    ) -> None:
        self._codes = dict(codes)
        self.default = default

    def code_of(self, error: BaseException) -> grpc.StatusCode:
        for cls in type(error).__mro__:
            code = self._codes.get(cls)
            if code is not None:
                return code
        return self.default

    def items(self) -> list[tuple[type[BaseException], grpc.StatusCode]]:
        """The entries, for documentation and tests."""
        return list(self._codes.items())
