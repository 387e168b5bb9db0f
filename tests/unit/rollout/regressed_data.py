"""Telemetry where a candidate release clearly regressed (for the rollout CLI and service tests)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path


def regressed_events(path: Path, per_arm: int = 400) -> Path:
    """``per_arm`` sessions on v1 with 1 in 100 handed off, as many on v2 with every other
    one handed off (1% against 50%: far past any gate's margin), a minute ago, one tenant,
    locale and platform."""
    when = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat(timespec="seconds")
    lines = []
    for version, every in (("v1", 100), ("v2", 2)):
        for i in range(per_arm):
            base = {
                "event_time": when,
                "tenant_id": "acme",
                "user_id": f"u-{version}-{i}",
                "session_id": f"s-{version}-{i}",
                "model_version": version,
                "locale": "en",
                "platform": "web",
            }
            turn = base | {"event_id": f"t-{version}-{i}", "event_type": "turn"}
            lines.append(json.dumps(turn | {"latency_ms": 100.0}))
            if i % every == 0:
                lines.append(
                    json.dumps(base | {"event_id": f"h-{version}-{i}", "event_type": "handoff"})
                )
    src = path / "events.jsonl"
    src.write_text("\n".join(lines) + "\n")
    return src
