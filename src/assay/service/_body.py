"""Reading a request body within limits: size as sent, content type, gzip (bombs included)."""

from __future__ import annotations

import zlib
from typing import Literal

from starlette.requests import Request

from assay.service._errors import ApiError

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
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Content-Type must be application/json (a JSON array of events) or "
            f"application/x-ndjson (one event per line) (got {media[:60] or 'none'!r})",
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
                f"the body must be UTF-8 (got charset {value.strip()[:30]!r}); encode it as UTF-8",
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


async def read_body(request: Request, limit: int) -> bytes:
    """The body as sent, refusing more than ``limit`` bytes before reading them all."""
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
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large("the body holds", limit)
        chunks.append(chunk)
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
            f"Content-Encoding must be gzip or absent (got {encoding[:30]!r}); compress with "
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
