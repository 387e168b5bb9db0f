"""The user docs against the code: a field, command, option, placeholder or setting that is
added, renamed or removed in the code must be changed in docs/ too, or these tests fail.

Each check reads the docs as text and compares it with names taken from the code (the Typer
app walked as a Click command tree, the schema's field specs, the privacy placeholders, the
settings dataclass), in both directions where the docs have a table of their own.

The command tree is read by duck typing (``commands``, ``params``, ``param_type_name``) because
Typer releases differ: some build on ``click``, newer ones on a vendored copy of it.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from assay.privacy import PLACEHOLDERS
from assay.schema import CONTENT_SCHEMA, EVENT_TYPES, EVENTS_SCHEMA, FIELDS, QUARANTINE_SCHEMA
from assay.schema._validate import RULES
from assay.store import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _read(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def _table_rows(text: str) -> list[str]:
    """Markdown table rows, header and separator rows excluded."""
    rows = [line for line in text.splitlines() if line.startswith("|")]
    return [r for r in rows if not re.fullmatch(r"\|[\s:|-]+\|", r)]


def _first_cell(row: str) -> str:
    return row.split("|")[1]


# -- the CLI -----------------------------------------------------------------------------------


Command = Any  # a Click (or Typer's vendored Click) command or group
Param = Any


def _cli() -> Command:
    from assay.cli import app

    command = typer.main.get_command(app)
    assert _is_group(command)
    return command


def _is_group(command: Command) -> bool:
    return isinstance(getattr(command, "commands", None), dict)


def _walk(group: Command, prefix: str = "") -> Iterator[tuple[str, Command]]:
    """Every command and group below ``group``, as (path such as 'metrics dau', command)."""
    for name in sorted(group.commands):
        command = group.commands[name]
        path = f"{prefix}{name}"
        yield path, command
        if _is_group(command):
            yield from _walk(command, prefix=f"{path} ")


def _options(command: Command) -> list[Param]:
    return [p for p in command.params if p.param_type_name == "option" and p.name != "help"]


def _literal_values(annotation: object) -> tuple[str, ...]:
    if typing.get_origin(annotation) is typing.Literal:
        return tuple(str(v) for v in typing.get_args(annotation))
    return tuple(v for arg in typing.get_args(annotation) for v in _literal_values(arg))


def _choices(param: Param) -> tuple[str, ...]:
    """The values an option accepts, if restricted (a Click Choice or a Literal annotation)."""
    choices = getattr(getattr(param, "type", None), "choices", None)
    if choices:
        return tuple(str(c) for c in choices)
    descriptor = getattr(param, "type_descriptor", None)
    return _literal_values(getattr(descriptor, "annotation", None))


def _sections(text: str) -> dict[str, tuple[int, str]]:
    """Sections headed ``## `assay PATH` `` (any level): path -> (level, body).

    The body runs to the next heading of any level, so a group's body is its introduction
    (which documents the options its commands share), not its commands' sections.
    """
    lines = text.splitlines()
    heads = [
        (i, len(m.group(1)), m.group(2))
        for i, line in enumerate(lines)
        if (m := re.match(r"^(#{1,6}) `assay ?([a-z -]*)`\s*$", line))
    ]
    fenced = False
    any_heading = []
    for i, line in enumerate(lines):
        if line.startswith("```"):
            fenced = not fenced
        elif line.startswith("#") and not fenced:
            any_heading.append(i)
    out: dict[str, tuple[int, str]] = {}
    for i, level, path in heads:
        end = next((j for j in any_heading if j > i), len(lines))
        out[path.strip()] = (level, "\n".join(lines[i + 1 : end]))
    return out


def _option_rows(body: str, opt: str) -> list[str]:
    return [r for r in _table_rows(body) if f"`{opt}`" in _first_cell(r)]


def _doc_default(value: object) -> str | None:
    """How a default is written in the docs (`20`, `0.3`, `table`), or None when the docs
    say it in words (no default, a flag)."""
    if value is None or isinstance(value, bool):
        return None
    return str(value)


@pytest.fixture(scope="module")
def cli_doc() -> str:
    return _read("cli.md")


@pytest.fixture(scope="module")
def cli_sections(cli_doc: str) -> dict[str, tuple[int, str]]:
    return _sections(cli_doc)


def test_cli_doc_has_a_section_for_every_command(cli_sections: dict[str, tuple[int, str]]) -> None:
    paths = {path for path, _ in _walk(_cli())}
    missing = sorted(paths - set(cli_sections))
    assert not missing, f"docs/cli.md has no `## `assay ...`` section for: {missing}"


def test_cli_doc_has_no_section_for_a_command_that_does_not_exist(
    cli_sections: dict[str, tuple[int, str]],
) -> None:
    paths = {path for path, _ in _walk(_cli())}
    stale = sorted(set(cli_sections) - paths - {""})
    assert not stale, f"docs/cli.md documents commands the CLI does not have: {stale}"


def _documented_in(path: str, sections: dict[str, tuple[int, str]]) -> list[tuple[str, str]]:
    """The sections where an option of ``path`` may be documented: its own, then its
    parent groups' introductions (options shared by all commands of a group)."""
    parts = path.split(" ")
    chain = [" ".join(parts[: k + 1]) for k in range(len(parts))][::-1]
    return [(p, sections[p][1]) for p in chain if p in sections]


def test_cli_doc_lists_every_option_of_every_command_with_its_default(
    cli_sections: dict[str, tuple[int, str]],
) -> None:
    problems: list[str] = []
    for path, command in _walk(_cli()):
        if _is_group(command) and not _options(command):
            continue
        places = _documented_in(path, cli_sections)
        for param in command.params:
            if param.param_type_name == "argument":
                metavar = (param.name or "").upper()
                if not any(f"`{metavar}" in body for _, body in places):
                    problems.append(f"assay {path}: argument {metavar} not documented")
                continue
            if param.param_type_name != "option" or param.name == "help":
                continue
            for opt in [*param.opts, *param.secondary_opts]:
                rows = [r for _, body in places for r in _option_rows(body, opt)]
                if not rows:
                    problems.append(f"assay {path}: option {opt} not in its options table")
                    continue
                default = _doc_default(param.default)
                if default is not None and not any(f"`{default}`" in r for r in rows):
                    problems.append(f"assay {path}: {opt} row does not show default `{default}`")
                envvar = param.envvar
                for name in [envvar] if isinstance(envvar, str) else list(envvar or []):
                    if not any(name in r for r in rows):
                        problems.append(f"assay {path}: {opt} row does not name env var {name}")
            choices = _choices(param)
            if choices:
                text = "\n".join(r for _, body in places for r in _option_rows(body, param.opts[0]))
                for choice in choices:
                    if f"`{choice}`" not in text:
                        problems.append(f"assay {path}: {param.opts[0]} choice {choice} missing")
    assert not problems, "docs/cli.md is out of date:\n" + "\n".join(problems)


def test_cli_doc_lists_no_option_that_the_command_does_not_have(
    cli_sections: dict[str, tuple[int, str]],
) -> None:
    commands = dict(_walk(_cli()))
    problems: list[str] = []
    for path, (_level, body) in cli_sections.items():
        command = commands.get(path)
        if command is None:
            continue
        if _is_group(command):
            # A group's introduction documents its own options (a group that runs on its
            # own, like `assay explain --metric ...`) and the options shared by its commands.
            real = {
                o
                for c in [command, *(c for _, c in _walk(command))]
                for p in _options(c)
                for o in [*p.opts, *p.secondary_opts]
            }
        else:
            real = {o for p in _options(command) for o in [*p.opts, *p.secondary_opts]}
        for row in _table_rows(body):
            for opt in re.findall(r"`(--?[a-z][a-z-]*)`", _first_cell(row)):
                if opt not in real:
                    problems.append(f"assay {path}: documents {opt}, which it does not have")
    assert not problems, "docs/cli.md documents options that do not exist:\n" + "\n".join(problems)


def test_cli_doc_lists_every_exit_code(cli_doc: str) -> None:
    from assay.cli import _common

    codes = {getattr(_common, name) for name in dir(_common) if name.startswith("EXIT_")}
    assert codes == {0, 1, 2, 3}, "new exit codes: document them in docs/cli.md"
    for code in codes:
        assert f"| `{code}` |" in cli_doc, f"exit code {code} is not in docs/cli.md's table"


# -- the schema --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema_doc() -> str:
    return _read("schema.md")


def _field_rows(schema_doc: str) -> dict[str, str]:
    """Rows of the field table: the ones whose first cell is exactly one backticked name."""
    rows: dict[str, str] = {}
    start = schema_doc.index("## Fields")
    end = schema_doc.index("\n## ", start + 1)
    for row in _table_rows(schema_doc[start:end]):
        m = re.fullmatch(r"\s*`([a-z_]+)`\s*", _first_cell(row))
        if m:
            rows[m.group(1)] = row
    return rows


_KIND_WORDS = {
    "string": "string",
    "time": "RFC 3339",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "string_list": "list of strings",
    "string_map": "object of string",
}


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def test_schema_doc_has_one_row_per_field_in_schema_order(schema_doc: str) -> None:
    rows = _field_rows(schema_doc)
    assert list(rows) == [f.name for f in FIELDS]


def test_schema_doc_states_each_fields_type_and_bounds(schema_doc: str) -> None:
    rows = _field_rows(schema_doc)
    problems: list[str] = []
    for f in FIELDS:
        row = rows[f.name]
        type_cell = row.split("|")[2]
        if _KIND_WORDS[f.kind] not in type_cell:
            problems.append(f"{f.name}: type should say {_KIND_WORDS[f.kind]!r}")
        if f.required != ("required" in row):
            problems.append(f"{f.name}: 'required' should be {'there' if f.required else 'absent'}")
        bounds = [f.max_len, f.minimum, f.maximum]
        if f.min_len not in (None, 0, 1):
            bounds.append(f.min_len)
        for bound in bounds:
            if bound is not None and not re.search(rf"(?<![0-9.]){_number(bound)}(?![0-9.])", row):
                problems.append(f"{f.name}: bound {_number(bound)} not stated")
        for choice in f.choices or ():
            if f"`{choice}`" not in row:
                problems.append(f"{f.name}: choice {choice!r} not listed")
    assert not problems, "docs/schema.md's field table is out of date:\n" + "\n".join(problems)


def test_schema_doc_states_the_size_limits(schema_doc: str) -> None:
    from assay.schema import _fields
    from assay.schema._validate import MAX_LIST_ITEM_CHARS

    rows = _field_rows(schema_doc)
    assert str(_fields.MAX_TEXT_BYTES) in rows["text"]
    for name in ("flights", "retrieved_doc_ids", "cited_doc_ids"):
        assert str(_fields.MAX_LIST_ITEMS) in rows[name]
        assert str(MAX_LIST_ITEM_CHARS) in rows[name]
    assert str(_fields.MAX_ATTRIBUTES) in rows["attributes"]
    assert str(_fields.MAX_ATTRIBUTE_CHARS) in rows["attributes"]


def test_schema_doc_names_every_event_type(schema_doc: str) -> None:
    assert all(f"`{t}`" in schema_doc for t in EVENT_TYPES)


def test_schema_doc_lists_exactly_the_validation_rules(schema_doc: str) -> None:
    start = schema_doc.index("## Validation rules")
    end = schema_doc.index("\n## ", start + 1)
    documented = [
        m.group(1)
        for row in _table_rows(schema_doc[start:end])
        if (m := re.fullmatch(r"\s*`([a-z_0-9]+)`\s*", _first_cell(row)))
    ]
    assert documented == list(RULES)


@pytest.mark.parametrize(
    ("table", "schema"),
    [("events", EVENTS_SCHEMA), ("content", CONTENT_SCHEMA), ("quarantine", QUARANTINE_SCHEMA)],
)
def test_schema_doc_describes_every_stored_column(
    schema_doc: str, table: str, schema: object
) -> None:
    start = schema_doc.index(f"### `{table}`")
    end_match = re.search(r"\n#{2,3} ", schema_doc[start + 1 :])
    body = schema_doc[start : start + 1 + end_match.start()] if end_match else schema_doc[start:]
    documented = {
        m.group(1)
        for row in _table_rows(body)
        if (m := re.fullmatch(r"\s*`([a-z_]+)`\s*", _first_cell(row)))
    }
    names = set(schema.names)  # type: ignore[attr-defined]
    if table == "events":
        # The event's own fields are in the field table; here only the columns ingest adds.
        names -= {f.name for f in FIELDS}
    assert documented == names


# -- privacy -----------------------------------------------------------------------------------


def test_privacy_doc_describes_every_placeholder() -> None:
    doc = _read("privacy.md")
    documented = [
        m.group(1)
        for row in _table_rows(doc)
        if (m := re.fullmatch(r"\s*`(<[A-Z_]+>)`\s*", _first_cell(row)))
    ]
    assert sorted(documented) == sorted(PLACEHOLDERS)


def test_privacy_doc_shows_no_placeholder_that_redaction_cannot_write() -> None:
    doc = _read("privacy.md")
    shown = set(re.findall(r"<[A-Z][A-Z_]*>", doc))
    assert shown <= set(PLACEHOLDERS)


def test_privacy_doc_names_every_redacted_field() -> None:
    from assay.ingest import _pipeline

    doc = _read("privacy.md")
    for name in (*_pipeline._REDACTED_STRINGS, *_pipeline._REDACTED_LISTS, "attributes", "text"):
        assert f"`{name}`" in doc, f"{name} is redacted at ingest but not in docs/privacy.md"


# -- settings ----------------------------------------------------------------------------------


def _settings_rows() -> dict[str, str]:
    rows: dict[str, str] = {}
    for name in ("cli.md", "schema.md"):
        for row in _table_rows(_read(name)):
            m = re.fullmatch(r"\s*`([a-z_]+)`\s*", _first_cell(row))
            if m and m.group(1) in {f.name for f in dataclasses.fields(Settings)}:
                rows.setdefault(m.group(1), row)
    return rows


def test_docs_list_every_setting_with_its_env_var_and_default() -> None:
    rows = _settings_rows()
    toml = dict(line.split(" = ", 1) for line in Settings().to_toml().splitlines() if " = " in line)
    problems: list[str] = []
    for f in dataclasses.fields(Settings):
        row = rows.get(f.name)
        if row is None:
            problems.append(f"{f.name}: no row in a settings table of cli.md or schema.md")
            continue
        if f"`ASSAY_{f.name.upper()}`" not in row:
            problems.append(f"{f.name}: env var ASSAY_{f.name.upper()} not named")
        if f"`{toml[f.name]}`" not in row:
            problems.append(f"{f.name}: default `{toml[f.name]}` (as in assay.toml) not shown")
    assert not problems, "settings docs are out of date:\n" + "\n".join(problems)


def test_docs_list_no_setting_that_does_not_exist() -> None:
    doc = _read("cli.md")
    start = doc.index("## Settings")
    end = doc.index("\n## ", start + 1)
    documented = {
        m.group(1)
        for row in _table_rows(doc[start:end])
        if (m := re.fullmatch(r"\s*`([a-z_]+)`\s*", _first_cell(row)))
    }
    assert documented == {f.name for f in dataclasses.fields(Settings)}


# -- links -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "cli.md",
        "schema.md",
        "privacy.md",
        "quickstart.md",
        "http.md",
        "metrics.md",
        "evaluation.md",
        "anomalies.md",
        "explain.md",
        "scan.md",
        "incidents.md",
        "drift.md",
        "profiles.md",
    ],
)
def test_doc_links_point_to_existing_files_and_headings(name: str) -> None:
    text = _read(name)
    problems: list[str] = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://")):
            continue
        file_part, _, anchor = target.partition("#")
        path = DOCS / file_part if file_part else DOCS / name
        if not path.exists():
            problems.append(f"{target}: no such file")
            continue
        if anchor and anchor not in _anchors(path.read_text(encoding="utf-8")):
            problems.append(f"{target}: no such heading")
    assert not problems, f"broken links in docs/{name}:\n" + "\n".join(problems)


def _anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    anchors = set()
    for line in text.splitlines():
        m = re.match(r"^#{1,6} (.+?)\s*$", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
            anchors.add(slug)
    return anchors
