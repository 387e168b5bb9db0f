"""The commands in README.md and docs/*.md run as written, on the data the docs create, and
show what the text says.

Each doc's ``bash`` and ``console`` blocks are read in order: in a ``console`` block a command
is a line starting with ``$ `` (plus its continuation lines and here-document), and the lines
up to the next command are its shown output; in a ``bash`` block every line is a command. The
commands of one doc run in order in one ``bash`` (so ``export``, ``KEY=$(...)`` and files made
by earlier commands carry over) in a fresh folder, with ``.venv/bin`` first on ``PATH``; the
reference pages run after the quickstart, in a copy of its folder with
``ASSAY_WORKSPACE=./ws``, since their examples use the data it creates. A command may exit 1
only where the docs say that it finds something; a few commands cannot run here and are listed
in ``NOT_RUN`` with the reason. Where the docs show output, ``CHECKS`` tests its key facts
against ``truth.json`` (not against numbers copied from the docs: the data ends yesterday, so
its dates move every day).

The HTTP example of docs/http.md has its own test (test_docs_http_example.py).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow  # about two minutes on two cores

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

#: Commands that do not run here: a pattern searched in the command's first line, and why.
NOT_RUN: dict[str, str] = {
    r"^bash scripts/": "makes its own .venv and installs assay (the suite runs in one already)",
    r"^source \.venv/bin/activate": "the tests already run in the virtual environment",
    r"--engine pyspark": "Spark takes ~20 s to start; the Spark tests compare the engines",
    r"^assay serve(?!.*&)": "a server in the foreground; the quickstart runs one with &",
}


@dataclass
class Command:
    """One command of a doc, with the output the doc shows for it."""

    doc: str
    line: int
    text: str
    shown: list[str] = field(default_factory=list)

    @property
    def first(self) -> str:
        return self.text.splitlines()[0]


def _is_fence(line: str) -> bool:
    return line.startswith("```")


def commands(path: Path) -> list[Command]:
    """The commands of the ``bash``/``console`` blocks of one Markdown file, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[Command] = []
    i = 0
    lang = None
    while i < len(lines):
        line = lines[i]
        if _is_fence(line):
            lang = None if lang is not None else (line[3:].strip() or "text")
            i += 1
            continue
        if lang not in ("bash", "console", "sh"):
            i += 1
            continue
        body = line[2:] if lang == "console" and line.startswith("$ ") else None
        if lang != "console":
            body = line if line.strip() and not line.lstrip().startswith("#") else None
        if body is None:
            if lang == "console" and out and line.strip():
                out[-1].shown.append(line)
            i += 1
            continue
        start = i
        text = [body]
        heredoc = re.search(r"<<-?'?([A-Z]+)'?", body)
        while text[-1].endswith("\\") and i + 1 < len(lines):
            i += 1
            text.append(lines[i])
        if heredoc:
            while i + 1 < len(lines) and lines[i] != heredoc.group(1):
                i += 1
                text.append(lines[i])
        out.append(Command(path.name, start + 1, "\n".join(text)))
        i += 1
    return out


def _skip_reason(command: Command) -> str | None:
    return next((why for key, why in NOT_RUN.items() if re.search(key, command.first)), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Ran:
    """A command as run: exit code, stdout and stderr."""

    command: Command
    rc: int | None
    stdout: str
    stderr: str
    seconds: float


def run_doc(cmds: list[Command], cwd: Path, env: dict[str, str]) -> list[Ran]:
    """Run ``cmds`` in order in one bash in ``cwd``; each one's exit code and output."""
    port = _free_port()
    logs = cwd / ".doc-run"
    logs.mkdir(exist_ok=True)
    script = [
        "set +e",
        # Stop the servers sent to the background, and wait until they are gone (they close
        # the workspace on their way out).
        "trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT",
        "_rc() { return $1; }",
    ]
    runnable: list[int] = []
    for n, c in enumerate(cmds):
        if _skip_reason(c) is not None:
            continue
        runnable.append(n)
        text = c.text.replace("8000", str(port))
        o, e, r, t = (logs / f"{n}.{s}" for s in ("out", "err", "rc", "time"))
        script.append(
            f"_t0=$EPOCHREALTIME; {{ {text}\n}} >{o} 2>{e}; _last=$?; echo $_last >{r}; "
            f"echo $_t0 $EPOCHREALTIME >{t}; _rc $_last"
        )
        if c.first.rstrip().endswith("&") or re.search(r"&\s+#", c.first):
            # A server sent to the background: wait until it answers (at most 30 s).
            script.append(
                f"for _i in $(seq 300); do curl -sf http://127.0.0.1:{port}/healthz >/dev/null "
                "&& break; sleep 0.1; done"
            )
    subprocess.run(["bash", "-c", "\n".join(script)], cwd=cwd, env=env, timeout=600, check=False)

    def read(n: int, suffix: str) -> str:
        path = logs / f"{n}.{suffix}"
        return path.read_text(errors="replace") if path.exists() else ""

    ran = []
    for n in runnable:
        rc, times = read(n, "rc").strip(), read(n, "time").split()
        seconds = float(times[1]) - float(times[0]) if len(times) == 2 else 0.0
        ran.append(Ran(cmds[n], int(rc) if rc else None, read(n, "out"), read(n, "err"), seconds))
    return ran


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", NO_COLOR="1", COLUMNS="200")
    env.update(extra)
    return env


# -- what each command must show -----------------------------------------------------------------

Check = Callable[[Ran, dict[str, Any]], None]
TODAY = dt.datetime.now(dt.UTC).date


def _day(offset: int) -> str:
    return (TODAY() - dt.timedelta(days=offset)).isoformat()


def _incident(truth: dict[str, Any], kind: str) -> dict[str, Any]:
    found: dict[str, Any] = next(i for i in truth["incidents"] if i["kind"] == kind)
    return found


def _table(text: str) -> list[dict[str, str]]:
    """A plain table (columns split on runs of 2+ spaces) after its title line, as dicts."""
    rows = [r for r in text.splitlines() if r.strip()]
    header = (i for i, r in enumerate(rows) if re.match(r"\s*[a-z_]+\s{2,}[a-z_]", r))
    header_at = next(header, None)
    if header_at is None:
        return []
    names = re.split(r"\s{2,}", rows[header_at].strip())
    return [
        dict(zip(names, re.split(r"\s{2,}", r.strip()), strict=False))
        for r in rows[header_at + 1 :]
    ]


def _check_synth(ran: Ran, truth: dict[str, Any]) -> None:
    assert truth["end"] in {_day(1), _day(2)}, "the data should end yesterday (UTC)"
    assert f"({truth['start']} to {truth['end']})" in ran.stderr


def _check_ingest(ran: Ran, truth: dict[str, Any]) -> None:
    m = re.search(r"(\d+) rows read: (\d+) accepted", ran.stdout + ran.stderr)
    assert m
    assert m.group(1) == m.group(2)


def _check_replay(ran: Ran, truth: dict[str, Any]) -> None:
    assert re.search(r"(\d+) rows read: 0 accepted, \1 duplicate", ran.stdout + ran.stderr)


def _check_dau_week(ran: Ran, truth: dict[str, Any]) -> None:
    rows = _table(ran.stdout)
    assert [r["day"] for r in rows] == [_day(k) for k in range(7, 0, -1)]
    assert {r["tenant_id"] for r in rows} == {"tenant-001"}


def _check_outage_drop(ran: Ran, truth: dict[str, Any]) -> None:
    outage = _incident(truth, "outage")
    assert outage["tenant_id"] == "tenant-004"
    assert (outage["start"], outage["end"]) == (_day(40), _day(38))
    rows = _table(ran.stdout)
    assert any(outage["start"] <= r["day"] <= outage["end"] and r["drop"] == "true" for r in rows)


def _check_bad_row(ran: Ran, truth: dict[str, Any]) -> None:
    assert "event_time broke timezone" in ran.stdout + ran.stderr


def _check_forget(ran: Ran, truth: dict[str, Any]) -> None:
    assert "erased 1 events" in ran.stdout + ran.stderr


def _check_forget_some(ran: Ran, truth: dict[str, Any]) -> None:
    m = re.search(r"erased (\d+) events", ran.stdout + ran.stderr)
    assert m
    assert int(m.group(1)) > 0


def _check_post(ran: Ran, truth: dict[str, Any]) -> None:
    answer = json.loads(ran.stdout)
    assert (answer["accepted"], answer["rejected"]) == (1, 0)


def _check_http_dau(ran: Ran, truth: dict[str, Any]) -> None:
    rows = json.loads(ran.stdout)["data"]
    # The event posted over HTTP is yesterday's: the metrics still end yesterday (no zero-filled
    # today), and they start where the data starts.
    assert rows[-1]["day"] == truth["end"]
    assert rows[0]["day"] == truth["start"]


def _check_http_post(ran: Ran, truth: dict[str, Any]) -> None:
    answer = json.loads(ran.stdout)
    assert (answer["accepted"], answer["duplicates"], answer["rejected"]) == (2, 0, 0)


def _check_http_today(ran: Ran, truth: dict[str, Any]) -> None:
    # One user sent a turn just now, into a new workspace: one row, today's, DAU 1.
    rows = json.loads(ran.stdout)["data"]
    assert [(r["tenant_id"], r["day"], r["dau"]) for r in rows] == [("acme", _day(0), 1)]


def _check_scan(ran: Ran, truth: dict[str, Any]) -> None:
    outage = _incident(truth, "outage")
    rows = _table(ran.stdout)
    assert any(
        r["tenant_id"] == outage["tenant_id"]
        and r["metric"] == "dau"
        and r["direction"] == "down"
        and outage["start"] <= r["start"] <= outage["end"]
        for r in rows
    ), ran.stdout


def _check_scan_latency(ran: Ran, truth: dict[str, Any]) -> None:
    _check_scan(ran, truth)
    onset = dt.date.fromisoformat(_incident(truth, "latency_regression")["start"])
    # An onset found a day late is still found: the scan needs the evidence of that day.
    days = {(onset + dt.timedelta(days=k)).isoformat() for k in (0, 1)}
    assert any(r["metric"] == "latency_p95" and r["start"] in days for r in _table(ran.stdout))


def _check_explain(ran: Ran, truth: dict[str, Any]) -> None:
    jump = _incident(truth, "handoff_jump")
    assert (jump["tenant_id"], jump["start"]) == ("tenant-003", _day(30))
    said = ran.stdout + ran.stderr
    assert f"handoff_rate of tenant {jump['tenant_id']} on {jump['start']}" in said
    root_causes = [r["slice"] for r in _table(ran.stdout) if r.get("root_cause") == "true"]
    assert f"model_version={jump['model_version']}" in root_causes, ran.stdout
    release = re.search(rf"model_version\s+{re.escape(jump['model_version'])}\s+(\S+)", ran.stdout)
    assert release
    assert release.group(1) == jump["start"]


def _check_regressions(ran: Ran, truth: dict[str, Any]) -> None:
    jump = _incident(truth, "handoff_jump")
    found = {
        (r["tenant_id"], r["field"], r["value"], r["metric"])
        for r in _table(ran.stdout)
        if r.get("regression") == "true"
    }
    assert (jump["tenant_id"], "model_version", jump["model_version"], "handoff_rate") in found
    assert any(f[1:] == ("prompt_template", "rag-v3", "latency_p95") for f in found)


def _check_evaluate(ran: Ran, truth: dict[str, Any]) -> None:
    (worse,) = truth["predictions"]["worse_slice"].values()
    flagged = {(r["feature"], r["value"]) for r in _table(ran.stdout) if r.get("flagged") == "true"}
    assert ("locale", worse) in flagged
    assert {v for f, v in flagged if f == "locale"} == {worse}


def _check_models_train(ran: Ran, truth: dict[str, Any]) -> None:
    out = ran.stdout + ran.stderr
    assert "registered quality/1 (logistic," in out
    # The test days: the last week whose one-day label windows have closed (data ends
    # yesterday), with train and validation before them.
    assert f"test days {_day(8)} to {_day(2)}" in out


def _check_models_monitor(ran: Ran, truth: dict[str, Any]) -> None:
    assert "quality/1 on " in ran.stdout + ran.stderr


def _check_intent_train(ran: Ran, truth: dict[str, Any]) -> None:
    # The 10-intent subset (scripts/clinc150_subset.py) and the oos label.
    assert "registered intent/1 (" in ran.stdout + ran.stderr
    assert "11 labels" in ran.stdout + ran.stderr


def _check_intent_predict(ran: Ran, truth: dict[str, Any]) -> None:
    answer = json.loads(ran.stdout)
    assert (answer["model"], answer["version"]) == ("intent", 1)
    [prediction] = answer["predictions"]
    assert prediction["label"] == "weather"  # one of the subset's ten intents
    assert prediction["top_k"][0]["label"] == "weather"


def _check_profile_reference(ran: Ran, truth: dict[str, Any]) -> None:
    assert f"({_day(60)}..{_day(31)})" in ran.stderr


def _check_as_shown(ran: Ran, truth: dict[str, Any]) -> None:
    # Inputs shipped in the repository (docs/examples/): the doc shows the whole output as it
    # comes, stdout and stderr (trailing blanks aside).
    shown = [line.rstrip() for line in ran.command.shown]
    out = [line.rstrip() for line in ran.stdout.splitlines() if line.strip()]
    err = [line.rstrip() for line in ran.stderr.splitlines() if line.strip()]
    assert shown, "the doc shows no output for this command"
    assert [line for line in shown if line in out] == out, ran.stdout
    assert sorted(shown) == sorted(out + err), ran.stdout + ran.stderr


def _check_rag_compare(ran: Ran, truth: dict[str, Any]) -> None:
    # Synth's RAG templates cite alike (truth.json injects only rag-v3's latency): every
    # difference is within a few standard errors of 0 (about 0.004 for a rate, 0.02 for
    # citations per answer at these counts), whatever the day.
    rows = {r["signal"]: r for r in _table(ran.stdout) if r["slice"] == "(all)"}
    bounds = {"cited_rate": 0.03, "citations_per_answer": 0.15, "uncited_retrieved_share": 0.03}
    assert set(bounds) <= set(rows), ran.stdout
    for signal, bound in bounds.items():
        assert abs(float(rows[signal]["diff"])) < bound, rows[signal]
        assert float(rows[signal]["ci_low"]) < float(rows[signal]["ci_high"]), rows[signal]


def _check_rag_synth(ran: Ran, truth: dict[str, Any]) -> None:
    assert "wrote the labelled set to rag-qrels.jsonl" in ran.stderr


#: (doc, start of the command) -> the exit code it must give and what its output must show;
#: a list when the command occurs more than once, one entry per occurrence.
Expect = tuple[int, Check | None]
CHECKS: dict[tuple[str, str], Expect | list[Expect]] = {
    ("quickstart.md", "assay synth"): [(0, _check_synth), (0, _check_rag_synth)],
    ("quickstart.md", "assay ingest ./data"): [(0, _check_ingest), (0, _check_replay)],
    ("quickstart.md", "assay metrics dau --tenant tenant-001 --since today-7"): (
        0,
        _check_dau_week,
    ),
    ("quickstart.md", "assay metrics rolling --tenant tenant-004"): (0, _check_outage_drop),
    ("quickstart.md", "assay ingest bad.jsonl"): (1, _check_bad_row),
    ("quickstart.md", "assay forget --tenant tenant-000 --user u1"): (0, _check_forget),
    ("quickstart.md", "printf "): (0, _check_post),
    ("quickstart.md", 'curl -s "http://127.0.0.1:8000/v1/metrics/dau"'): (0, _check_http_dau),
    ("quickstart.md", "assay anomalies scan --since today-45 "): (1, _check_scan_latency),
    ("quickstart.md", "assay anomalies scan --since today-45 --by"): (1, None),
    ("quickstart.md", "assay explain --metric handoff_rate"): (0, _check_explain),
    ("quickstart.md", "assay profile reference save"): (0, _check_profile_reference),
    ("quickstart.md", "assay regressions"): (1, _check_regressions),
    ("quickstart.md", "assay evaluate"): (1, _check_evaluate),
    ("quickstart.md", "assay models train quality"): (0, _check_models_train),
    ("quickstart.md", "assay models monitor quality"): (0, _check_models_monitor),
    ("quickstart.md", "assay models train intent"): (0, _check_intent_train),
    ("quickstart.md", "curl -s http://127.0.0.1:8000/v1/models/intent@champion/predict"): (
        0,
        _check_intent_predict,
    ),
    ("quickstart.md", "assay rag eval"): (0, _check_as_shown),
    ("quickstart.md", "assay rag compare"): [(0, _check_rag_compare), (0, None)],
    ("quickstart.md", "assay rag judge"): (0, _check_as_shown),
    ("quickstart.md", "assay rag audit sample"): (0, _check_as_shown),
    ("quickstart.md", "assay rag audit import"): (0, _check_as_shown),
    ("README.md", "assay synth"): (0, _check_synth),
    ("README.md", "assay ingest"): (0, _check_ingest),
    ("README.md", "assay forget"): (0, _check_forget_some),
    ("README.md", "assay explain"): (0, _check_explain),
    ("README.md", "assay anomalies scan"): (1, None),
    ("README.md", "assay regressions"): (1, _check_regressions),
    ("README.md", "assay evaluate"): (1, _check_evaluate),
    ("cli.md", "assay evaluate"): (1, None),
    ("cli.md", "assay rag eval"): (0, _check_as_shown),
    ("cli.md", "assay anomalies scan"): (1, _check_scan),
    ("cli.md", "assay anomalies series"): (1, None),
    ("cli.md", "assay regressions"): (1, _check_regressions),
    ("scan.md", "assay anomalies scan --since today-45 --by locale"): (1, None),
    ("privacy.md", "assay forget --tenant tenant-002 --user"): (0, _check_forget_some),
    ("privacy.md", "assay forget --tenant tenant-002"): (0, _check_forget_some),
    ("http.md", "printf "): (0, _check_http_post),
    ("http.md", 'curl -s "http://127.0.0.1:8000/v1/metrics/dau'): (0, _check_http_today),
}


def _expected(ran: Ran, seen: dict[tuple[str, str], int]) -> Expect:
    """What ``ran`` must give, from CHECKS (counting occurrences in ``seen``)."""
    c = ran.command
    for key, value in CHECKS.items():
        if key[0] == c.doc and c.first.startswith(key[1]):
            n = seen[key] = seen.get(key, -1) + 1
            return value[min(n, len(value) - 1)] if isinstance(value, list) else value
    return 0, None


def _verify(results: list[Ran], truth: dict[str, Any]) -> list[str]:
    problems = []
    seen: dict[tuple[str, str], int] = {}
    for k, ran in enumerate(results):
        c = ran.command
        where = f"{c.doc}:{c.line}: {c.first[:90]}"
        code, check = _expected(ran, seen)
        following = results[k + 1].command if k + 1 < len(results) else None
        if following is not None and following.first.strip() == "echo $?" and following.shown:
            # The doc shows the exit code itself: `$ echo $?` and its output, right after.
            assert int(following.shown[0]) == code, f"{where}: CHECKS and the doc disagree"
        if ran.rc != code:
            problems.append(f"{where}: exit {ran.rc}, expected {code}\n{ran.stderr[-800:]}")
            continue
        if check is not None:
            try:
                check(ran, truth)
            except AssertionError as exc:
                problems.append(f"{where}: output does not show what the doc says: {exc}")
    return problems


REFERENCE_DOCS = ("cli.md", "incidents.md", "metrics.md", "privacy.md", "scan.md")

#: What the docs read from the clone they run in (docs/examples/rag/): linked into the
#: quickstart's folder and the reference pages' copies of it, left out of the .gitignore check.
FROM_THE_CLONE = ("docs",)

Session = tuple[Path, list[Ran]]


def _link_the_clone(cwd: Path) -> None:
    for name in FROM_THE_CLONE:
        (cwd / name).symlink_to(ROOT / name, target_is_directory=True)


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Session]:
    """Every doc run once, two at a time (each is one process at a time, and CI has two
    cores): the README and the HTTP page beside the quickstart (they need nothing of it, and
    the README ends well before it), then the reference pages in copies of the quickstart's
    folder."""

    def run(doc: Path, cwd: Path, **env: str) -> Session:
        return cwd, run_doc(commands(doc), cwd, _env(**env))

    def reference(name: str, quickstart: Path) -> Session:
        here = tmp_path_factory.mktemp(name.removesuffix(".md")) / "qs"
        shutil.copytree(
            quickstart, here, ignore=shutil.ignore_patterns(".doc-run", *FROM_THE_CLONE)
        )
        _link_the_clone(here)
        return run(ROOT / "docs" / name, here, ASSAY_WORKSPACE="./ws")

    clone = tmp_path_factory.mktemp("quickstart")
    _link_the_clone(clone)
    with ThreadPoolExecutor(max_workers=2) as pool:
        quickstart = pool.submit(run, ROOT / "docs" / "quickstart.md", clone)
        readme = pool.submit(run, ROOT / "README.md", tmp_path_factory.mktemp("readme"))
        http = pool.submit(run, ROOT / "docs" / "http.md", tmp_path_factory.mktemp("http"))
        done = {"quickstart.md": quickstart.result()}
        refs = {n: pool.submit(reference, n, done["quickstart.md"][0]) for n in REFERENCE_DOCS}
        done["README.md"] = readme.result()
        done["http.md"] = http.result()
        done.update({n: f.result() for n, f in refs.items()})
    return done


def _truth(cwd: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((cwd / "data" / "truth.json").read_text("utf-8"))
    return loaded


def _assert_ignored_by_git(cwd: Path) -> None:
    """What the docs create in the folder they run in is in .gitignore (as /NAME or /NAME/)."""
    lines = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    anchored = {line.strip() for line in lines if line.startswith("/")}
    made = {f"/{p.name}/" if p.is_dir() else f"/{p.name}" for p in cwd.iterdir()}
    missing = sorted(made - anchored - {"/.doc-run/"} - {f"/{n}/" for n in FROM_THE_CLONE})
    assert not missing, f"add to .gitignore: {missing}"


def _assert_runs_as_written(
    doc: str, session: Session, *, at_least: int, with_truth: bool = True
) -> None:
    """Every command of ``doc`` did what CHECKS says, each checked command was there to run
    (a renamed command would skip its check), and what it made is ignored by git."""
    cwd, results = session
    assert len(results) >= at_least, f"only {len(results)} commands found in {doc}"
    problems = _verify(results, _truth(cwd) if with_truth else {})
    assert not problems, "\n".join(problems)
    firsts = [r.command.first for r in results]
    for checked, prefix in CHECKS:
        if checked == doc:
            assert any(f.startswith(prefix) for f in firsts), f"no command starts with {prefix}"
    _assert_ignored_by_git(cwd)


def test_the_quickstart_runs_as_written(sessions: dict[str, Session]) -> None:
    _assert_runs_as_written("quickstart.md", sessions["quickstart.md"], at_least=30)


def test_the_quickstart_event_sent_over_http_counts_yesterday(
    sessions: dict[str, Session],
) -> None:
    _, results = sessions["quickstart.md"]
    week = next(r for r in results if r.command.first.startswith("assay metrics dau --tenant"))
    read = next(r for r in results if "/v1/metrics/dau" in r.command.first)
    before = _table(week.stdout)[-1]
    after = json.loads(read.stdout)["data"][-1]
    assert after["day"] == before["day"]
    assert after["dau"] == int(before["dau"]) + 1


def test_the_readme_runs_as_written(sessions: dict[str, Session]) -> None:
    _assert_runs_as_written("README.md", sessions["README.md"], at_least=15)


@pytest.mark.parametrize("doc", REFERENCE_DOCS)
def test_the_reference_examples_run_on_the_quickstart_data(
    doc: str, sessions: dict[str, Session]
) -> None:
    _assert_runs_as_written(doc, sessions[doc], at_least=1)


def test_the_http_example_runs_as_written_in_a_new_folder(sessions: dict[str, Session]) -> None:
    _assert_runs_as_written("http.md", sessions["http.md"], at_least=5, with_truth=False)


def test_not_run_commands_are_few_and_exist() -> None:
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    skipped = [c for d in docs for c in commands(d) if _skip_reason(c) is not None]
    assert 0 < len(skipped) <= 10, [c.first for c in skipped]
    for key in NOT_RUN:
        assert any(_skip_reason(c) == NOT_RUN[key] for c in skipped), f"{key!r} matches nothing"


def _ran(session: Session, start: str) -> Ran:
    return next(r for r in session[1] if r.command.first.startswith(start))


def test_the_quickstart_rag_metrics_equal_trec_evals_definitions(
    sessions: dict[str, Session],
) -> None:
    """RR, R@10 and AP of both runs of docs/examples/rag, written again from trec_eval's
    definitions (score descending, then doc_id descending), equal the means the step prints."""
    folder = ROOT / "docs" / "examples" / "rag"
    grades: dict[str, dict[str, int]] = {}
    for line in (folder / "qrels.txt").read_text(encoding="utf-8").splitlines():
        query, _, doc, grade = line.split()
        grades.setdefault(query, {})[doc] = int(grade)

    def means(name: str) -> dict[str, float]:
        scored: dict[str, list[tuple[float, str]]] = {}
        for line in (folder / name).read_text(encoding="utf-8").splitlines():
            query, _, doc, _, score, _ = line.split()
            scored.setdefault(query, []).append((float(score), doc))
        sums = {"RR": 0.0, "R@10": 0.0, "AP": 0.0}
        for query, judged in grades.items():
            relevant = {d for d, g in judged.items() if g >= 1}
            ranking = [d for _, d in sorted(scored.get(query, []), reverse=True)]
            hits = [i for i, d in enumerate(ranking, 1) if d in relevant]
            sums["RR"] += 1 / hits[0] if hits else 0.0
            sums["R@10"] += sum(1 for i in hits if i <= 10) / len(relevant)
            sums["AP"] += sum(k / i for k, i in enumerate(hits, 1)) / len(relevant)
        return {m: v / len(grades) for m, v in sums.items()}

    printed = {
        r["metric"]: r for r in _table(_ran(sessions["quickstart.md"], "assay rag eval").stdout)
    }
    for column, run in (("mean_a", "run-a.txt"), ("mean_b", "run-b.txt")):
        for metric, value in means(run).items():
            assert float(printed[metric][column]) == pytest.approx(value, rel=1e-3), metric


def test_the_quickstart_audit_agreement_equals_sklearns_kappa(
    sessions: dict[str, Session],
) -> None:
    """The kappa, precision and recall the audit import prints, from the labelled audit file
    and the verdicts the lexical baseline gives by construction (scripts/make_rag_examples.py:
    it calls grounded exactly the answers made of the context's own words, the faithful ones
    ans-001..010 and the contradicting ones ans-027..030)."""
    from sklearn.metrics import cohen_kappa_score

    session = sessions["quickstart.md"]
    rows = [
        json.loads(line) for line in (session[0] / "audit.jsonl").read_text("utf-8").splitlines()
    ]
    assert len(rows) == 20
    own_words = {f"ans-{k:03d}" for k in (*range(1, 11), *range(27, 31))}
    people = [r["human_label"] for r in rows]
    judge = ["grounded" if r["event_id"] in own_words else "not_grounded" for r in rows]
    both = sum(p == j == "not_grounded" for p, j in zip(people, judge, strict=True))
    [printed] = _table(_ran(session, "assay rag audit import").stdout)
    assert int(printed["n"]) == len(rows)
    assert float(printed["kappa"]) == pytest.approx(cohen_kappa_score(people, judge), rel=1e-3)
    assert float(printed["precision_not_grounded"]) == pytest.approx(
        both / judge.count("not_grounded"), rel=1e-3
    )
    assert float(printed["recall_not_grounded"]) == pytest.approx(
        both / people.count("not_grounded"), rel=1e-3
    )


def test_the_quickstart_release_comparison_counts_the_answers_of_the_data(
    sessions: dict[str, Session],
) -> None:
    """Answers (turn events with a retrieved doc id) and the share citing one, per prompt
    template, counted in the JSON Lines the quickstart ingested, equal what `assay rag
    compare` prints."""
    cwd, _ = sessions["quickstart.md"]
    counts = {"rag-v2": [0, 0], "rag-v3": [0, 0]}
    for path in sorted((cwd / "data").glob("events-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            event = json.loads(line)
            template = event.get("prompt_template")
            retrieved = [d for d in event.get("retrieved_doc_ids") or [] if d is not None]
            if event["event_type"] != "turn" or template not in counts or not retrieved:
                continue
            counts[template][0] += 1
            counts[template][1] += any(d is not None for d in event.get("cited_doc_ids") or [])
    compare = _ran(sessions["quickstart.md"], "assay rag compare")
    [cited] = [r for r in _table(compare.stdout) if r["signal"] == "cited_rate"]
    for side, template in (("a", "rag-v2"), ("b", "rag-v3")):
        answers, citing = counts[template]
        assert int(cited[f"answers_{side}"]) == answers
        assert float(cited[f"rate_{side}"]) == pytest.approx(citing / answers, rel=1e-3)


def test_the_quickstart_finds_synths_injected_rag_release(sessions: dict[str, Session]) -> None:
    """`assay rag compare --by locale` on `assay synth --rag`'s world: the locale whose
    cited_rate falls most from rag-v2 to rag-v4, with an interval below 0, is the one
    truth.json names."""
    cwd, results = sessions["quickstart.md"]
    truth = json.loads((cwd / "rag-data" / "truth.json").read_text(encoding="utf-8"))
    [release] = [i for i in truth["incidents"] if i["kind"] == "rag_release"]
    assert (release["baseline_prompt_template"], release["prompt_template"]) == (
        "rag-v2",
        "rag-v4",
    )
    compare = [r for r in results if r.command.first.startswith("assay rag compare")][1]
    cited = {
        r["slice"]: r
        for r in _table(compare.stdout)
        if r.get("signal") == "cited_rate" and r["slice"] != "(all)"
    }
    worst = min(cited, key=lambda s: float(cited[s]["diff"]))
    assert worst == release["locale"], compare.stdout
    assert float(cited[worst]["ci_high"]) < 0
