"""Workspace settings: one dataclass whose names, defaults and help feed ``assay.toml``, the
environment (``ASSAY_<NAME>``) and the docs.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay._errors import WorkspaceError

SETTINGS_FILE = "assay.toml"


@dataclass(frozen=True)
class Settings:
    """Settings of one workspace.

    Every field can be set in ``assay.toml`` (``[assay]`` table) or overridden by the environment
    variable ``ASSAY_<FIELD NAME IN CAPITALS>``.
    """

    store_text: bool = field(
        default=True,
        metadata={"help": "Keep redacted text in the content table (false: text is dropped)."},
    )
    max_future_seconds: int = field(
        default=86_400,
        metadata={"help": "Reject events whose time is more than this far ahead of now."},
    )
    http_max_lateness_days: int = field(
        default=30,
        metadata={"help": "Over HTTP, reject events older than this many days."},
    )
    active_event_types: tuple[str, ...] = field(
        default=("turn",),
        metadata={"help": "Event types that make a user active on a day."},
    )
    engine: str = field(
        default="duckdb",
        metadata={"help": "Query engine for metrics: duckdb or pyspark."},
    )
    batch_rows: int = field(
        default=65_536,
        metadata={"help": "Rows per ingest batch (memory is bounded by this, not the file)."},
    )
    http_max_body_bytes: int = field(
        default=5 * 1024 * 1024,
        metadata={"help": "Over HTTP, the largest request body (after gzip decoding), bytes."},
    )
    http_max_events: int = field(
        default=10_000,
        metadata={"help": "Over HTTP, the most events in one request."},
    )
    http_queue_requests: int = field(
        default=64,
        metadata={"help": "Over HTTP, ingest requests in flight before 429 Too Many Requests."},
    )
    http_key_requests: int = field(
        default=16,
        metadata={
            "help": "Over HTTP, ingest requests of one API key in flight (bodies still arriving "
            "included) before 429 Too Many Requests."
        },
    )
    http_header_timeout_seconds: float = field(
        default=20.0,
        metadata={
            "help": "Over HTTP, seconds a connection may take to send a request's headers "
            "before it is closed."
        },
    )
    http_body_timeout_seconds: float = field(
        default=20.0,
        metadata={
            "help": "Over HTTP, seconds a request body may take beyond what "
            "http_body_min_bytes_per_second allows (408 when it is slower)."
        },
    )
    http_body_min_bytes_per_second: int = field(
        default=1024,
        metadata={
            "help": "Over HTTP, the slowest a request body may arrive once "
            "http_body_timeout_seconds are spent, bytes/s (a 2G phone sends 5-10 times this; "
            "0: the timeout alone)."
        },
    )
    http_key_reads: int = field(
        default=2,
        metadata={"help": "Over HTTP, reads of one API key running at once before 429."},
    )
    http_readers: int = field(
        default=4,
        metadata={"help": "Over HTTP, workspace handles that serve reads at once."},
    )
    http_max_window_days: int = field(
        default=400,
        metadata={"help": "Over HTTP, the largest window (days) a metric read may ask for."},
    )
    http_fsync: bool = field(
        default=True,
        metadata={"help": "Over HTTP, fsync each commit's files before acknowledging."},
    )
    otlp_endpoint: str = field(
        default="",
        metadata={"help": "OTLP/HTTP traces endpoint for `assay serve` (empty: no export)."},
    )
    lock_timeout_seconds: float = field(
        default=120.0,
        metadata={"help": "How long a writer waits for the workspace write lock."},
    )
    rollout_interval_seconds: float = field(
        default=300.0,
        metadata={
            "help": "Seconds between two evaluations of the live rollouts by `assay serve` "
            "(0: none; `assay rollout evaluate` still runs them on demand)."
        },
    )
    mlflow_uri: str = field(
        default="",
        metadata={
            "help": "MLflow tracking server (or store URI) of the model registry (empty: "
            "SQLite at models/mlflow.db, artifacts in models/artifacts/)."
        },
    )

    judge_url: str = field(
        default="",
        metadata={
            "help": "Base URL of the OpenAI-compatible chat-completions endpoint of `assay rag "
            "judge --judge openai` (the key comes only from ASSAY_JUDGE_API_KEY)."
        },
    )
    judge_model: str = field(
        default="",
        metadata={"help": "Model name the OpenAI-compatible groundedness judge asks for."},
    )
    judge_price_per_thousand_tokens: float = field(
        default=0.0,
        metadata={"help": "USD per 1000 tokens of the judge's model, for the cost it reports."},
    )

    @classmethod
    def load(cls, workspace: Path) -> Settings:
        """Read ``assay.toml`` of ``workspace`` (missing file: defaults), then the environment."""
        values: dict[str, Any] = {}
        path = workspace / SETTINGS_FILE
        if path.exists():
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise WorkspaceError(
                    f"{path} is not valid TOML ({exc}); fix the file or delete it to use defaults"
                ) from None
            values.update(data.get("assay", {}))
        for f in dataclasses.fields(cls):
            env = os.environ.get(f"ASSAY_{f.name.upper()}")
            if env is not None:
                values[f.name] = env
        return cls.from_mapping(values, origin=str(path))

    @classmethod
    def from_mapping(cls, values: dict[str, Any], *, origin: str = "settings") -> Settings:
        """Build settings from plain values, converting strings from the environment."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise WorkspaceError(
                f"unknown setting(s) {', '.join(unknown)} in {origin}; "
                f"known settings are {', '.join(sorted(known))}"
            )
        kwargs: dict[str, Any] = {}
        for name, raw in values.items():
            default = known[name].default
            kwargs[name] = _convert(name, raw, default, origin)
        return cls(**kwargs)

    def to_toml(self) -> str:
        """Render as an ``assay.toml`` document with each setting's help as a comment."""
        lines = ["# assay workspace settings; see docs/cli.md", "[assay]"]
        for f in dataclasses.fields(self):
            lines.append(f"# {f.metadata.get('help', '')}")
            lines.append(f"{f.name} = {_toml_value(getattr(self, f.name))}")
        return "\n".join(lines) + "\n"


def _convert(name: str, raw: Any, default: Any, origin: str) -> Any:
    expected = type(default).__name__
    try:
        if isinstance(default, bool):
            if isinstance(raw, bool):
                return raw
            if isinstance(raw, str) and raw.lower() in {"true", "1", "yes", "false", "0", "no"}:
                return raw.lower() in {"true", "1", "yes"}
            raise ValueError
        if isinstance(default, tuple):
            items = raw.split(",") if isinstance(raw, str) else list(raw)
            return tuple(str(i).strip() for i in items if str(i).strip())
        if isinstance(default, int):
            if isinstance(raw, bool):
                raise ValueError
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        return str(raw)
    except (TypeError, ValueError):
        raise WorkspaceError(
            f"setting {name} in {origin} must be a {expected} (got {type(raw).__name__} "
            f"{str(raw)[:40]!r}); fix the value or remove it to use the default {default!r}"
        ) from None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
