"""Structured logs: one JSON object per line on stderr, never raw text or raw user ids.

Library code logs counts, names of files and rules, and pseudonyms at most, passing structured
fields as ``extra={"assay": {...}}``. ``ASSAY_LOG_LEVEL`` (default WARNING) and
``ASSAY_LOG_FORMAT`` (``json``, the default, or ``text``) configure the CLI's handler.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "assay", None)
        if isinstance(fields, dict):
            data.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            # The type only: an exception's text could quote an input.
            data["error"] = record.exc_info[0].__name__
        return json.dumps(data, default=str, ensure_ascii=False)


def configure(level: str | None = None, fmt: str | None = None) -> None:
    """Send assay's logs to stderr (idempotent)."""
    logger = logging.getLogger("assay")
    level_name = (level or os.environ.get("ASSAY_LOG_LEVEL") or "WARNING").upper()
    logger.setLevel(getattr(logging, level_name, logging.WARNING))
    if any(getattr(h, "_assay", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler._assay = True  # type: ignore[attr-defined]
    if (fmt or os.environ.get("ASSAY_LOG_FORMAT") or "json") == "text":
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.propagate = False
