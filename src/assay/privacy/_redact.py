"""Redaction of personal data and secrets in free text, over whole Arrow arrays.

The rules are RE2 patterns run by Arrow's regex kernels (linear time, C++), applied in a fixed
order; see :data:`RULES`. Two rules need a check that a regular expression cannot express
(payment cards: Luhn; IBANs: ISO 7064 mod 97-10). For those, RE2 only selects the rows holding a
candidate, and Python rewrites each *distinct* candidate row once.

Speed comes from one RE2 pass over every row: the union of all rule patterns (for emails, just
``@``, which every email holds; the full pattern made the combined automaton blow up). A row it
does not match cannot be changed by any rule (each rule only rewrites text its pattern matches,
so by induction over the ordered rules an unmatched row passes through untouched). All the
per-rule passes then run only on the matching rows, which are few in typical traffic.

Placeholders are inert: no rule can match any part of a placeholder (none holds a digit, ``@``,
``=`` or ``:``, and secret values may not start with ``<``). Redacting twice therefore gives the
same text, a placeholder typed by the user is left alone, and the number of replacements in a
row is exactly the number of placeholders in the output minus the number in the input.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from assay._errors import PrivacyError

EMAIL = "<EMAIL>"
PHONE = "<PHONE>"
CARD = "<CARD>"
IBAN = "<IBAN>"
IP = "<IP>"
GOV_ID = "<GOV_ID>"
SECRET = "<SECRET>"

#: Every placeholder redaction can write.
PLACEHOLDERS: tuple[str, ...] = (SECRET, EMAIL, IBAN, CARD, GOV_ID, IP, PHONE)

_PLACEHOLDER_RE = "|".join(re.escape(p) for p in PLACEHOLDERS)


# --- Python checks for the rules RE2 cannot finish --------------------------------------------


_LUHN_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def _luhn_ok(digits: str) -> bool:
    values = [ord(char) - 48 for char in reversed(digits)]
    total = sum(values[0::2]) + sum(_LUHN_DOUBLED[v] for v in values[1::2])
    return total % 10 == 0


# ISO 13616 letter values: A=10 ... Z=35.
_IBAN_LETTERS = str.maketrans({chr(ord("A") + k): str(10 + k) for k in range(26)})


def _iban_ok(compact: str) -> bool:
    rearranged = (compact[4:] + compact[:4]).upper()
    return int(rearranged.translate(_IBAN_LETTERS)) % 97 == 1


# A whole run of ASCII digit groups joined by single spaces or dashes, holding at least 13
# digits (the look-ahead skips shorter runs without a Python call per run).
_DIGIT_RUN = re.compile(r"(?<![0-9])(?=(?:[0-9][ -]?){12}[0-9])[0-9]+(?:[ -][0-9]+)*")
_CARD_MIN_DIGITS = 13
_CARD_MAX_DIGITS = 19


def _cards_in_run(match: re.Match[str]) -> str:
    run = match.group()
    parts = re.split(r"([ -])", run)
    groups, seps = parts[0::2], parts[1::2]
    n = len(groups)
    # Choose non-overlapping ranges of whole groups (13-19 digits, Luhn valid) that cover the
    # most digits, so a stray number next to a card cannot shift the card out of reach.
    best = [0] * (n + 1)
    choice: list[int | None] = [None] * (n + 1)
    for i in range(n - 1, -1, -1):
        best[i], choice[i] = best[i + 1], None
        digits = ""
        for j in range(i, n):
            # Cards are printed compact or in groups of 4-6 digits (4-4-4-4, 4-6-5, 4-4-4-4-3):
            # every group but the last has 4-6 digits. This keeps lists of small numbers
            # ("1 2 3 ... 13") from being read as a card.
            if j > i and not 4 <= len(groups[j - 1]) <= 6:
                break
            digits += groups[j]
            if len(digits) > _CARD_MAX_DIGITS:
                break
            if len(digits) >= _CARD_MIN_DIGITS and _luhn_ok(digits):
                covered = len(digits) + best[j + 1]
                if covered > best[i]:
                    best[i], choice[i] = covered, j
    if best[0] == 0:
        return run
    out: list[str] = []
    i = 0
    while i < n:
        end = choice[i]
        if end is None:
            out.append(groups[i])
            i += 1
        else:
            out.append(CARD)
            i = end + 1
        if i < n:
            out.append(seps[i - 1])
    return "".join(out)


def _rewrite_cards(text: str) -> str:
    return _DIGIT_RUN.sub(_cards_in_run, text)


# An IBAN's first token (country code and check digits at a token start), then up to 30 more
# letters or digits in tokens joined by single spaces. Bounded, so a long run of words is read
# once per IBAN-like token, not to its end each time.
_IBAN_SPAN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]){0,30}")
_ASCII_ALNUM = re.compile(r"[A-Za-z0-9]")
_IBAN_MIN, _IBAN_MAX = 15, 34
#: IBAN length per country code, from the SWIFT IBAN Registry (release 100, 2025).
_IBAN_REGISTRY = (
    "AD:24 AE:23 AL:28 AT:20 AZ:28 BA:20 BE:16 BG:22 BH:22 BI:27 BR:29 BY:28 CH:21 CR:22 "
    "CY:28 CZ:24 DE:22 DJ:27 DK:18 DO:28 EE:20 EG:29 ES:24 FI:18 FK:18 FO:18 FR:27 GB:22 "
    "GE:22 GI:23 GL:18 GR:27 GT:28 HN:28 HR:21 HU:28 IE:22 IL:23 IQ:23 IS:26 IT:27 JO:30 "
    "KW:30 KZ:20 LB:28 LC:32 LI:21 LT:20 LU:20 LV:21 LY:25 MC:27 MD:24 ME:22 MK:19 MN:20 "
    "MR:27 MT:31 MU:30 NI:28 NL:18 NO:15 OM:23 PK:24 PL:28 PS:29 PT:25 QA:29 RO:24 RS:22 "
    "RU:33 SA:24 SC:31 SD:18 SE:24 SI:19 SK:24 SM:27 SO:23 ST:25 SV:28 TL:23 TN:24 TR:26 "
    "UA:29 VA:22 VG:24 XK:20 YE:30 "
)
_IBAN_LENGTHS: dict[str, int] = {
    code: int(length) for code, length in re.findall(r"([A-Z]{2}):([0-9]+)", _IBAN_REGISTRY)
}


def _iban_end(tokens: list[str]) -> int | None:
    """Index of the last token of a valid IBAN starting at ``tokens[0]``, or None."""
    length = _IBAN_LENGTHS.get(tokens[0][:2].upper())
    if length is None:
        # A country missing from the registry copy (one added later): only a compact IBAN in
        # one token, so a guess can never swallow the words after it.
        first = tokens[0]
        return 0 if _IBAN_MIN <= len(first) <= _IBAN_MAX and _iban_ok(first) else None
    # Groups after the first are written in the country code's case; a token in the other
    # case is the next word of the sentence, not part of the IBAN.
    fold = str.upper if tokens[0][:2].isupper() else str.lower
    compact = ""
    for j, token in enumerate(tokens):
        if j > 0 and fold(token) != token:
            return None
        compact += token
        if len(compact) >= length:
            return j if len(compact) == length and _iban_ok(compact) else None
    return None


def _rewrite_ibans(text: str) -> str:
    out: list[str] = []
    pos = 0
    while (match := _IBAN_SPAN.search(text, pos)) is not None:
        tokens = match.group().split(" ")
        if _ASCII_ALNUM.match(text, match.end()):
            tokens.pop()  # the bound cut the last token short: it is not part of an IBAN
        end = _iban_end(tokens) if tokens else None
        if end is None:
            # Another IBAN may start at a later token of this span: search again from the
            # next character (the look-behind keeps the search at token starts).
            out.append(text[pos : match.start() + 1])
            pos = match.start() + 1
            continue
        out.append(text[pos : match.start()])
        out.append(IBAN)
        pos = match.start() + sum(len(token) for token in tokens[: end + 1]) + end
    out.append(text[pos:])
    return "".join(out)


# --- The rules --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Rule:
    """One redaction pass.

    ``pattern`` is RE2. Without ``rewrite_row`` each match is replaced by ``replacement`` (an
    RE2 rewrite string: ``\\1`` is group 1). With it, ``pattern`` only selects candidate rows
    (it must match every row ``rewrite_row`` would change) and ``rewrite_row`` rewrites a row.
    """

    name: str
    placeholder: str
    pattern: str
    replacement: str = ""
    rewrite_row: Callable[[str], str] | None = None
    #: RE2 pattern that matches inside every match of ``pattern``, used instead of it in the
    #: one pass over all rows when ``pattern`` would make the combined automaton too large.
    trigger: str | None = None


# Non-ASCII characters that can be part of a word: everything above U+00BF except the signs
# U+00D7 and U+00F7 and the punctuation and space blocks (general punctuation, CJK symbols,
# fullwidth and small forms). Stands in for \p{L}\p{N}, which RE2 takes ~3 ms to compile, and
# Arrow compiles the pattern on every call.
_W = (
    r"\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1FFF}\x{2070}-\x{2FFF}\x{3040}-\x{FE0F}"
    r"\x{FE70}-\x{FEFE}\x{FF10}-\x{FF19}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{FF66}-\x{10FFFF}"
)
_H = r"[0-9A-Fa-f]{1,4}"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_V4 = rf"(?:{_OCTET}\.){{3}}{_OCTET}"

# Names whose value is a secret in ``name=value`` or ``name: value`` anywhere in the text.
_SECRET_NAMES = (
    r"password|passwd|passcode|pwd|api[_-]?key|access[_-]?key|secret[_-]?key|private[_-]?key"
    r"|access[_-]?token|auth[_-]?token|refresh[_-]?token|id[_-]?token|client[_-]?secret"
)
# Names whose value is a secret as a URL query parameter (``?sig=...``, ``&code=...``).
_QUERY_NAMES = (
    r"token|key|secret|sig|signature|code|auth|session|sessionid|session_id|apikey|api_key"
    r"|x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature"
    r"|x-goog-credential"
)
# A secret's value: it may not start with "<", so a placeholder is never taken for a value.
_VALUE = r"[^\s<>\"',;&]+"
_VALUE_NOT_A_WORD = r"[^\s<>\"',;&]*[^A-Za-z\s<>\"',;&][^\s<>\"',;&]*"
_KEY_SHAPES = "|".join(
    (
        r"\bsk-[A-Za-z0-9_\-]{16,}",  # OpenAI, Anthropic (sk-..., sk-proj-..., sk-ant-...)
        r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}",  # Stripe
        r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA|ASCA)[A-Z0-9]{16}\b",  # AWS
        r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}",  # GitHub tokens
        r"\bgithub_pat_[A-Za-z0-9_]{20,}",
        r"\bglpat-[A-Za-z0-9_\-]{20,}",  # GitLab
        r"\bxox[abposr]-[A-Za-z0-9\-]{10,}",  # Slack
        r"\bAIza[0-9A-Za-z_\-]{35}",  # Google API key
        r"\beyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*",  # JSON Web Token
        r"-----BEGIN[A-Z ]*PRIVATE KEY-----[A-Za-z0-9+/=\s]*(?:-----END[A-Z ]*PRIVATE KEY-----)?",
    )
)

#: The redaction passes, in the order they run. Secrets go first (a URL's ``user:pass@host``
#: would otherwise read as an email, ``token=4111...`` as a card); IBANs, phone numbers written
#: with "+", cards and government ids go before IPs and other phone numbers, whose looser
#: patterns would eat parts of them.
RULES: tuple[_Rule, ...] = (
    _Rule("secret_key_shape", SECRET, _KEY_SHAPES, SECRET),
    _Rule(
        "secret_basic_auth",
        SECRET,
        r"\b((?i:[a-z][a-z0-9+.\-]*)://)[^\s/?#@:<>\"']+:[^\s/?#@<>\"']*@",
        r"\1" + SECRET + "@",
    ),
    _Rule(
        "secret_bearer",
        SECRET,
        r"\b((?i:bearer)\s+)[A-Za-z0-9\-._~+/]{16,}=*",
        r"\1" + SECRET,
    ),
    _Rule(
        "secret_authorization",
        SECRET,
        # With a scheme (Basic, Bearer...) the credential after it; without one, a value that
        # holds a non-letter, so a scheme word left before a placeholder is never taken for one.
        rf"((?i:authorization)[\"']?\s*[=:]\s*[\"']?)"
        rf"(?:((?i:basic|bearer|token|digest|negotiate)\s+){_VALUE}|{_VALUE_NOT_A_WORD})",
        r"\1\2" + SECRET,
    ),
    _Rule(
        "secret_assignment",
        SECRET,
        rf"((?i:{_SECRET_NAMES})[\"']?\s*[=:]\s*[\"']?){_VALUE}"
        rf"|\b((?i:secret|token)[\"']?\s*=\s*[\"']?){_VALUE}",
        r"\1\2" + SECRET,
    ),
    _Rule(
        "secret_query",
        SECRET,
        r"([?&;#](?i:" + _QUERY_NAMES + r")=)[^&#\s<>\"']+",
        r"\1" + SECRET,
    ),
    _Rule(
        "email",
        EMAIL,
        rf"[A-Za-z0-9._%+'\-{_W}]+@[A-Za-z0-9\-{_W}]+(?:\.[A-Za-z0-9\-{_W}]+)*\.[A-Za-z{_W}]{{2,}}",
        EMAIL,
        # In one automaton with the other rules, the non-ASCII classes made RE2's DFA blow up
        # (measured: 7x slower than all rules one by one on long mixed text).
        trigger="@",
    ),
    _Rule(
        "iban",
        IBAN,
        r"[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]){11,30}",
        rewrite_row=_rewrite_ibans,
    ),
    _Rule(
        "phone_international",
        PHONE,
        # + and 7 to 15 digits, with spaces, dots, dashes or brackets. Before cards, government
        # ids and IPs: after a "+", "100 00 0000" is part of a phone number, not an SSN.
        r"\+[1-9](?:[ .\-]?\(?[0-9]\)?){6,14}",
        PHONE,
    ),
    _Rule("card", CARD, r"[0-9](?:[ \-]?[0-9]){12,18}", rewrite_row=_rewrite_cards),
    _Rule(
        "gov_id",
        GOV_ID,
        # US SSN (and ITIN, same shape) with dashes or spaces; UK National Insurance number.
        r"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b|\b[0-9]{3} [0-9]{2} [0-9]{4}\b"
        r"|\b(?i:[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D])\b",
        GOV_ID,
    ),
    _Rule(
        "ip_leading_colons",
        IP,
        # IPv6 written from "::" (::1, ::ffff:192.0.2.1). RE2 has no look-behind, so the
        # character before is captured and written back; it may not be part of a word or
        # address ("Interface::add" stays).
        rf"(^|[^0-9A-Za-z:.])(?:::(?:(?i:ffff)(?::0{{1,4}})?:)?{_V4}\b|::(?:{_H}:){{0,6}}{_H}\b)",
        r"\1" + IP,
    ),
    _Rule(
        "ip",
        IP,
        "|".join(
            (
                # IPv6, most specific forms first: RE2 takes the first alternative that matches,
                # not the longest, so a short form listed early would cut an address in two.
                r"\b(?i:fe80):(?::[0-9A-Fa-f]{0,4}){0,4}%[0-9A-Za-z]+",
                rf"\b(?:{_H}:){{6}}{_V4}\b",
                rf"\b(?:{_H}:){{1,4}}:{_V4}\b",
                rf"\b(?:{_H}:){{7}}{_H}\b",
                rf"\b{_H}:(?::{_H}){{1,6}}\b",
                rf"\b(?:{_H}:){{1,2}}(?::{_H}){{1,5}}\b",
                rf"\b(?:{_H}:){{1,3}}(?::{_H}){{1,4}}\b",
                rf"\b(?:{_H}:){{1,4}}(?::{_H}){{1,3}}\b",
                rf"\b(?:{_H}:){{1,5}}(?::{_H}){{1,2}}\b",
                rf"\b(?:{_H}:){{1,6}}:{_H}\b",
                rf"\b(?:{_H}:){{1,7}}:",
                # IPv4, dotted quad with octets 0-255.
                rf"\b{_V4}\b",
            )
        ),
        IP,
    ),
    _Rule(
        "phone",
        PHONE,
        "|".join(
            (
                # North American: (415) 555-0132, 415-555-0132, 415.555.0132, 1-415-555-0132.
                r"(?:\b1[ .\-]?)?(?:\([0-9]{3}\)[ .\-]?|\b[0-9]{3}[ .\-])[0-9]{3}[ .\-][0-9]{4}\b",
                # National with a trunk 0 and at least one separator: 020 7946 0958.
                r"\b0[0-9]{2,4}[ .\-][0-9]{3,4}[ .\-]?[0-9]{3,4}\b",
            )
        ),
        PHONE,
    ),
)

_ANY_RULE = "|".join(f"(?:{rule.trigger or rule.pattern})" for rule in RULES)


# --- The same rules in Python's re, for small batches --------------------------------------------
#
# Arrow compiles a kernel's pattern on every call: ~2-10 ms for one utterance, which is most of
# a one-text prediction. Small batches therefore run the rules compiled once in Python's ``re``.
# The translation keeps RE2's meaning: ``re.ASCII`` gives RE2's ASCII ``\b`` and case folding
# of ASCII letters, ``\s`` becomes RE2's ``[\t\n\f\r ]`` (Python's also takes ``\v`` and
# ``\x1c``-``\x1f``), ``\x{HEX}`` becomes ``\UXXXXXXXX``. Both engines pick the leftmost match
# and, among those, the first alternative and greedy repetition (RE2 guarantees Perl's answer),
# and both replace matches left to right with the whole text as context. The one difference
# left: under ``(?i)`` RE2 folds U+017F (long s) into ``s`` and U+212A (Kelvin) into ``k``;
# texts holding either go to the Arrow path. Python's engine backtracks, so batches of more
# than :data:`FAST_MAX_CHARS` characters go there too: the worst texts measured (2,048 digits,
# or "1." 1,024 times) take ~9 ms either way; at twice the length Python took 42 ms to RE2's 8.
# tests/unit/privacy/test_redact_fast.py checks that both paths agree.

#: Most rows, and most characters in all rows together, that :func:`redact_array` redacts in
#: Python.
FAST_MAX_ROWS = 64
FAST_MAX_CHARS = 2048
_FOLDED_BY_RE2 = re.compile("[\u017f\u212a]")
_RE2_ESCAPE = re.compile(r"\\(x\{([0-9A-Fa-f]+)\}|.)|(\[\^?)|(\])")


def _python_pattern(pattern: str) -> str:
    """An RE2 pattern of :data:`RULES` as a Python ``re`` pattern (with ``re.ASCII``)."""
    out: list[str] = []
    pos = 0
    in_class = False
    for match in _RE2_ESCAPE.finditer(pattern):
        out.append(pattern[pos : match.start()])
        pos = match.end()
        escaped, code, opening, closing = match.groups()
        if opening is not None:
            if in_class:  # a literal "[" inside a class
                out.append("\\[" + opening[1:])
            else:
                out.append(opening)
                in_class = True
        elif closing is not None:
            out.append(closing)
            in_class = False
        elif code is not None:
            out.append(f"\\U{int(code, 16):08X}")
        elif escaped == "s":
            out.append("\\t\\n\\f\\r " if in_class else "[\\t\\n\\f\\r ]")
        else:
            out.append(match.group())
    out.append(pattern[pos:])
    return "".join(out)


def _python_replacement(replacement: str) -> str:
    """An RE2 rewrite string as a Python template (``\\1`` → ``\\g<1>``)."""
    if "\\\\" in replacement:  # pragma: no cover - no rule escapes a backslash
        raise ValueError("backslash escapes in replacements are not translated")
    return re.sub(r"\\([0-9])", r"\\g<\1>", replacement)


@dataclass(frozen=True, slots=True)
class _PyRule:
    pattern: re.Pattern[str]
    replacement: str
    rewrite_row: Callable[[str], str] | None


_PY_PLACEHOLDER = re.compile(_PLACEHOLDER_RE)


@dataclass(frozen=True, slots=True)
class _PyRules:
    source: tuple[_Rule, ...]  # the RULES these were compiled from
    any_rule: re.Pattern[str]
    rules: tuple[_PyRule, ...]


def _compile_python(rules: tuple[_Rule, ...]) -> _PyRules:
    union = "|".join(f"(?:{rule.trigger or rule.pattern})" for rule in rules)
    return _PyRules(
        rules,
        re.compile(_python_pattern(union), re.ASCII),
        tuple(
            _PyRule(
                re.compile(_python_pattern(rule.pattern), re.ASCII),
                _python_replacement(rule.replacement),
                rule.rewrite_row,
            )
            for rule in rules
        ),
    )


_PY_RULES = [_compile_python(RULES)]


def _python_rules() -> _PyRules:
    """The compiled rules, compiled again if :data:`RULES` was replaced (tests do)."""
    compiled = _PY_RULES[0]
    if compiled.source is not RULES:
        compiled = _PY_RULES[0] = _compile_python(RULES)
    return compiled


def _fast_enough(texts: list[str | None]) -> bool:
    """Whether the rows may take the Python path (see above)."""
    if len(texts) > FAST_MAX_ROWS:
        return False
    present = [text for text in texts if text is not None]
    if sum(map(len, present)) > FAST_MAX_CHARS:
        return False
    return not any(_FOLDED_BY_RE2.search(text) for text in present)


def _redact_one(text: str) -> tuple[str, int]:
    """One row through every rule, in Python; the same answer as the Arrow path."""
    compiled = _python_rules()
    if not compiled.any_rule.search(text):
        return text, 0
    before = len(_PY_PLACEHOLDER.findall(text))
    for rule in compiled.rules:
        if rule.rewrite_row is None:
            text = rule.pattern.sub(rule.replacement, text)
        elif rule.pattern.search(text):
            text = rule.rewrite_row(text)
    return text, len(_PY_PLACEHOLDER.findall(text)) - before


def _redact_small(texts: list[str | None]) -> tuple[pa.Array, pa.Array]:
    out: list[str | None] = []
    counts: list[int] = []
    for text in texts:
        if text is None:
            out.append(None)
            counts.append(0)
        else:
            redacted, count = _redact_one(text)
            out.append(redacted)
            counts.append(count)
    return pa.array(out, type=pa.string()), pa.array(counts, type=pa.int32())


# --- Kernels ----------------------------------------------------------------------------------


def _apply_rule(rule: _Rule, values: pa.Array) -> pa.Array:
    if rule.rewrite_row is None:
        return pc.replace_substring_regex(
            values, pattern=rule.pattern, replacement=rule.replacement
        )
    candidates = pc.fill_null(pc.match_substring_regex(values, pattern=rule.pattern), False)
    if not pc.any(candidates).as_py():
        return values
    encoded = pc.dictionary_encode(values.filter(candidates))
    rewrite = rule.rewrite_row
    rewritten_distinct = pa.array(
        [rewrite(text) for text in encoded.dictionary.to_pylist()], type=pa.string()
    )
    rewritten = rewritten_distinct.take(encoded.indices)
    return pc.replace_with_mask(values, candidates, rewritten)


def _redact_chunk(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    values = values.cast(pa.string())
    touched = pc.fill_null(pc.match_substring_regex(values, pattern=_ANY_RULE), False)
    zero_counts = pa.nulls(len(values), pa.int32()).fill_null(0)
    if not pc.any(touched).as_py():
        return values, zero_counts
    before = values.filter(touched)
    after = before
    for rule in RULES:
        after = _apply_rule(rule, after)
    added = pc.subtract(
        pc.count_substring_regex(after, pattern=_PLACEHOLDER_RE),
        pc.count_substring_regex(before, pattern=_PLACEHOLDER_RE),
    )
    return (
        pc.replace_with_mask(values, touched, after),
        pc.replace_with_mask(zero_counts, touched, pc.cast(added, pa.int32())),
    )


def redact_array(values: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
    """Redact personal data and secrets in every string of an array.

    Parameters
    ----------
    values : pyarrow.Array or pyarrow.ChunkedArray
        Strings (``string``, ``large_string`` or ``string_view``); nulls allowed.

    Returns
    -------
    redacted : pyarrow.Array
        ``pa.string()``, aligned with ``values``; nulls stay null.
    counts : pyarrow.Array
        ``pa.int32()``, the number of placeholders written into each row (0 for a null row).
        Placeholders already present in the input are not counted.

    Raises
    ------
    PrivacyError
        If ``values`` is not a string array or anything fails while redacting. Nothing is
        returned half redacted, and the message never holds the text.

    Notes
    -----
    See :mod:`assay.privacy` for what each placeholder covers. Costly work runs in Arrow's
    RE2 kernels; Python only checks Luhn and mod-97 once per distinct candidate row. A small
    array (up to :data:`FAST_MAX_ROWS` rows, :data:`FAST_MAX_CHARS` characters in all) runs
    the same rules precompiled in Python's ``re`` instead, with the same answer: Arrow
    compiles its patterns on every call, milliseconds that dominate one utterance.

    Examples
    --------
    >>> import pyarrow as pa
    >>> text, counts = redact_array(pa.array(["mail bob@example.com", None, "hi"]))
    >>> text.to_pylist(), counts.to_pylist()
    (['mail <EMAIL>', None, 'hi'], [1, 0, 0])
    """
    value_type = getattr(values, "type", None)
    if not isinstance(values, pa.Array | pa.ChunkedArray) or not (
        pa.types.is_string(value_type)
        or pa.types.is_large_string(value_type)
        or pa.types.is_string_view(value_type)
    ):
        raise PrivacyError(
            f"redact_array expected a pyarrow string array, got {type(values).__name__} of type "
            f"{value_type}; cast the column to pa.string() first"
        )
    try:
        if len(values) <= FAST_MAX_ROWS:
            texts: list[str | None] = values.to_pylist()
            if _fast_enough(texts):
                return _redact_small(texts)
        if isinstance(values, pa.ChunkedArray):
            # One pass over all chunks: each kernel call compiles its patterns, a fixed cost
            # that dominates for small chunks (an HTTP batch is a dozen of them).
            values = pa.concat_arrays(
                [c.cast(pa.string()) for c in values.chunks] or [pa.array([], type=pa.string())]
            )
        redacted, counts = _redact_chunk(values)
    except Exception as exc:
        # ``from None``: an underlying message might quote the text being redacted.
        raise PrivacyError(
            f"redaction failed ({type(exc).__name__}) and returned nothing; do not store these "
            "rows. This is a bug in assay or a corrupt input array; report the exception type"
        ) from None
    return redacted, counts


def redact_text(text: str) -> str:
    """Redact one string with the same rules as :func:`redact_array`.

    Parameters
    ----------
    text : str
        Any text.

    Returns
    -------
    str
        The text with personal data and secrets replaced by placeholders.

    Raises
    ------
    PrivacyError
        If ``text`` is not a ``str`` or redaction fails (the message never holds the text).

    Examples
    --------
    >>> redact_text("call (415) 555-0132 from 10.0.0.1")
    'call <PHONE> from <IP>'
    """
    if not isinstance(text, str):
        raise PrivacyError(
            f"redact_text expected str, got {type(text).__name__}; decode bytes as UTF-8 first"
        )
    try:
        array = pa.array([text], type=pa.string())
    except Exception as exc:
        # Lone surrogates (e.g. from a lenient JSON decoder) are not valid UTF-8.
        raise PrivacyError(
            f"redact_text could not encode the text as UTF-8 ({type(exc).__name__}); "
            "replace invalid characters before redacting"
        ) from None
    redacted, _ = redact_array(array)
    result = redacted[0].as_py()
    if not isinstance(result, str):  # pragma: no cover - redact_array keeps non-null rows
        raise PrivacyError("redaction returned no text for a non-null input")
    return result


__all__ = ["PLACEHOLDERS", "RULES", "redact_array", "redact_text"]
