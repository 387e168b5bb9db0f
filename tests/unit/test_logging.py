"""Logs are JSON lines with structured fields and no exception text."""

from __future__ import annotations

import json
import logging

from assay._logging import JsonFormatter


def test_json_formatter_keeps_fields_and_drops_exception_text() -> None:
    record = logging.LogRecord("assay.ingest", logging.INFO, __file__, 1, "ingested file", (), None)
    record.assay = {"accepted": 3, "source": "a.jsonl"}
    out = json.loads(JsonFormatter().format(record))
    assert out["msg"] == "ingested file"
    assert (out["accepted"], out["source"], out["level"]) == (3, "a.jsonl", "info")
    try:
        raise ValueError("secret user text jane@example.com")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert json.loads(line)["error"] == "ValueError"
    assert "jane@example.com" not in line
