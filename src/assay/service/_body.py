"""Reading a request body within limits: size as sent, time and transfer rate, content type,
gzip (bombs included)."""

from __future__ import annotations

import asyncio
import zlib
from typing import Literal

from starlette.requests import ClientDisconnect, Request

from assay.service._errors import ApiError, quoted

BodyKind = Literal["array", "lines"]

#: Media types accepted by ``POST /v1/events``.
MEDIA_TYPES: dict[str, BodyKind] = {
    "application/json": "array",
    "application/x-ndjson": "lines",
    "application/ndjson": "lines",
    "application/jsonl": "lines",
}


def body_kind(content_type: str | None) -> BodyKind:
    """The body's kind from its Content-Type; 415 for anything else."""
    media, _, params = (content_type or "").partition(";")
    media = media.strip().lower()
    kind = MEDIA_TYPES.get(media)
    if kind is None:
        got = quoted(media, 60) if media else "none"
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Content-Type must be application/json (a JSON array of events) or "
            f"application/x-ndjson (one event per line) (got {got})",
            field="Content-Type",
        )
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            raise ApiError(
                415,
                "unsupported_media_type",
                f"the body must be UTF-8 (got charset {quoted(value.strip(), 30)}); encode it "
                "as UTF-8",
                field="Content-Type",
            )
    return kind


def _too_large(what: str, limit: int) -> ApiError:
    return ApiError(
        413,
        "too_large",
        f"{what} more than {limit:,} bytes; split the batch, or raise the "
        "http_max_body_bytes setting",
        rule="size",
    )


class ClientAborted(ApiError):
    """The client closed the connection before its body had arrived (nobody reads the answer)."""

    def __init__(self, received: int) -> None:
        super().__init__(
            499, "client_closed", f"the client closed the connection after {received:,} bytes"
        )
        self.received = received


async def read_body(request: Request, limit: int, *, timeout: float, min_rate: float) -> bytes:
    """The body as sent, refusing more than ``limit`` bytes before reading them all.

    The body must have arrived ``timeout`` seconds plus one second per ``min_rate`` bytes
    received after the first byte was asked for (408 otherwise, and the connection is closed):
    a client trickling bytes cannot hold its request open for long, while a slow one that keeps
    sending at ``min_rate`` gets all the time its body needs (``min_rate`` 0: ``timeout`` is
    all a body gets). :class:`ClientAborted` when the client goes away first.
    """
    length = request.headers.get("content-length")
    if length is not None:
        try:
            declared = int(length)
        except ValueError:
            raise ApiError(
                400, "bad_request", "Content-Length is not a number", field="Content-Length"
            ) from None
        if declared > limit:
            raise _too_large("the body holds", limit)
    chunks: list[bytes] = []
    size = 0
    start = asyncio.get_running_loop().time() + timeout
    try:
        async with asyncio.timeout_at(start) as deadline:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _too_large("the body holds", limit)
                chunks.append(chunk)
                if min_rate > 0:
                    deadline.reschedule(start + size / min_rate)
    except TimeoutError:
        allowed = f"{timeout:g} s" + (
            f" plus 1 s per {min_rate:,.0f} bytes" if min_rate > 0 else ""
        )
        raise ApiError(
            408,
            "body_timeout",
            f"the body arrived too slowly ({size:,} bytes in the time allowed: {allowed}); "
            "send it faster, or raise the http_body_timeout_seconds or lower the "
            "http_body_min_bytes_per_second setting",
            rule="rate",
            headers={"Connection": "close"},
        ) from None
    except ClientDisconnect:
        raise ClientAborted(size) from None
    return b"".join(chunks)


def decode(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """Undo ``Content-Encoding: gzip``, stopping as soon as the output passes ``limit``.

    A gzip bomb costs at most ``limit`` bytes of memory: the output is produced in bounded
    steps and refused with 413 the moment it would pass the limit.
    """
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip"):
        raise ApiError(
            415,
            "unsupported_encoding",
            f"Content-Encoding must be gzip or absent (got {quoted(encoding, 30)}); compress with "
            "gzip or send the body uncompressed",
            field="Content-Encoding",
        )
    out = bytearray()
    data = body
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        while True:
            out += inflater.decompress(data, limit + 1 - len(out))
            if len(out) > limit:
                raise _too_large("the body decompresses to", limit)
            if inflater.eof:
                data = inflater.unused_data
                if not data:
                    break
                inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # next gzip member
                continue
            data = inflater.unconsumed_tail
            if not data:
                break
    except zlib.error as exc:
        raise ApiError(
            422,
            "unreadable_body",
            f"the body is not valid gzip ({exc}); compress it with gzip, or drop the "
            "Content-Encoding header",
            field="Content-Encoding",
            rule="gzip",
        ) from None
    if not inflater.eof:
        raise ApiError(
            422,
            "unreadable_body",
            "the gzip body ends before its end marker (truncated); send the whole body",
            field="Content-Encoding",
            rule="gzip",
        )
    return bytes(out)
