"""How ``assay serve`` runs the app on uvicorn: its HTTP protocol, with a deadline for headers.

uvicorn times out an idle keep-alive connection (``timeout_keep_alive``) but not one that is
still sending a request's headers: a client that sends a header line every few seconds, or
connects and sends nothing, holds its connection (and a file descriptor) for ever, and enough of
them leave no descriptor for anyone else (slowloris). :func:`http_protocol` gives uvicorn's
httptools protocol a deadline: a connection's request headers must be complete within
``http_header_timeout_seconds`` of the connection's start or of the request's first byte, or
the connection is closed without an answer. Bodies have their own deadline, in the events router
(:func:`assay.service._body.read_body`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from assay.store import Settings


def http_protocol(workspace: Path) -> type[asyncio.Protocol] | str:
    """The ``http`` argument of ``uvicorn.run`` for ``workspace``'s settings.

    ``"auto"`` (uvicorn's choice, without the header deadline) where httptools is missing.
    """
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # uvicorn without the [standard] extra: h11
        return "auto"
    timeout = Settings.load(workspace).http_header_timeout_seconds

    class HeaderDeadlineProtocol(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(timeout, self._headers_too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeaderDeadlineProtocol
