"""The Python path of redaction (small batches) against the Arrow/RE2 path, and by hand.

:func:`assay.privacy.redact_array` redacts a small array with the rules compiled once in
Python's ``re`` (``_redact_small``) and a large one with Arrow's RE2 kernels (``_redact_chunk``).
The two must give the same text and counts on every input: property tests generate texts built
from everything the redactor covers, near misses, and the characters where the two engines
differ unless translated (``\\v``, ``\\x1c``, non-ASCII letters next to ``\\b``, and the
Kelvin sign and long s that RE2 case-folds).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import assay.privacy._redact as redact_module
from assay.privacy import redact_array, redact_text


def _arrow_path(texts: list[str | None]) -> tuple[list[str | None], list[int]]:
    redacted, counts = redact_module._redact_chunk(pa.array(texts, type=pa.string()))
    return redacted.to_pylist(), counts.to_pylist()


def _python_path(texts: list[str | None]) -> tuple[list[str | None], list[int]]:
    redacted, counts = redact_module._redact_small(texts)
    assert redacted.type == pa.string()
    assert counts.type == pa.int32()
    return redacted.to_pylist(), counts.to_pylist()


# --- Generated texts ----------------------------------------------------------------------------

_LUHN_VALID = ("4111111111111111", "378282246310005", "5555555555554444", "6011111111111117")
_FRAGMENTS = (
    # emails, obfuscated and near misses
    "bob@example.com",
    "jöhn.dœ+tag@exämple.co.uk",
    "a@b",
    "x@y.z",
    "user:pass@host.com",
    # phones
    "+44 20 7946 0958",
    "(415) 555-0132",
    "415.555.0132",
    "1-415-555-0132",
    "020 7946 0958",
    "07700 900123",
    "555-0132",
    "4155550132",
    "2026-01-05",
    # cards, valid and not
    *_LUHN_VALID,
    "4111 1111 1111 1111",
    "3782-822463-10005",
    "4111111111111112",
    "1 2 3 4 5 6 7 8 9 10 11 12 13",
    # IBANs
    "DE89370400440532013000",
    "DE89 3704 0044 0532 0130 00",
    "gb82 west 1234 5698 7654 32",
    "GB82 WEST 1234 5698 7654 33",
    # government ids
    "123-45-6789",
    "123 45 6789",
    "AB 12 34 56 C",
    "ab123456c",
    # IPs
    "10.0.0.1",
    "256.1.1.1",
    "1.2.3.4",
    "v1.2.3.4",
    "::1",
    "::ffff:192.0.2.1",
    "fe80::1%eth0",
    "2001:db8::8a2e:370:7334",
    "2001:0db8:0000:0000:0000:ff00:0042:8329",
    "Interface::add",
    "aa:bb:cc:dd:ee:ff",
    # secrets
    "sk-abcdefghijklmnopqrstuv",
    "sk_live_abcdefghijkl",
    "AKIAABCDEFGHIJKLMNOP",
    "ghp_abcdefghijklmnopqrstuvwxyz",
    "xoxb-1234567890-abc",
    "eyJhbGciOi.eyJzdWIiOi.sig",
    "https://user:secret@example.com/x",
    "Bearer abcdefghijklmnopqrstu",
    "Authorization: Basic dXNlcjpwYXNz",
    "authorization=abc123",
    "password=hunter2",
    "password=",
    "Authorization:",
    "Bearer",
    "token=",
    'db_password: "hunter2"',
    "api-key=k3y",
    "secret=s",
    "TOKEN='t0k'",
    "?token=abc&page=2",
    "&sig=xyz",
    "#code=1234",
    "to\u212aen=abc",  # RE2 folds the Kelvin sign into k: a token name
    "pa\u017f\u017fword=x",  # and the long s into s: a password name
    "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
    # placeholders typed by a user
    "<EMAIL>",
    "<SECRET>",
    "<CARD>",
)
# Characters the two engines read differently unless the translation is right.
_TRICKY = (
    "\x0b",
    "\x1c",
    "\x85",
    "\xa0",
    "\u2028",
    "é",
    "İ",
    "\u0131",  # dotless i
    "ß",
    "\u212a",  # Kelvin sign: RE2 folds it into k under (?i)
    "\u017f",  # long s: RE2 folds it into s under (?i)
    "日本",
    "٣",
    "\U0001f600",
)
_SEPARATORS = (" ", "", "\n", "\t", "\x0b", "\x1c", ", ", ": ", "=", "@", ".", "-", ":", "/")

_fragment = st.one_of(
    st.sampled_from(_FRAGMENTS),
    st.sampled_from(_TRICKY),
    st.text(alphabet="0123456789 -.+()", min_size=1, max_size=20),
    st.text(alphabet="abcdefKkSsAZ09_:=@.<>", min_size=1, max_size=12),
    st.text(max_size=6),
)
_utterance = st.lists(
    st.tuples(_fragment, st.sampled_from(_SEPARATORS)), min_size=0, max_size=8
).map(lambda parts: "".join(a + b for a, b in parts).replace("\ud800", ""))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_utterance)
def test_the_python_path_redacts_one_text_as_the_arrow_path_does(text: str) -> None:
    assume(redact_module._fast_enough([text]))  # the texts redact_array sends it
    assert _python_path([text]) == _arrow_path([text])


_SPACES = " \t\n\r\f\x0b\x1c\x1d\x1e\x1f\x85\xa0\u2028\u3000"
_assignment = st.tuples(
    st.sampled_from(
        ("password", "Authorization", "Bearer", "token", "api_key", "ftp://u", "BEARER", "x")
    ),
    st.text(alphabet="=:\"'", max_size=2),
    st.text(alphabet=_SPACES, max_size=3),
    st.text(alphabet="abc123<>\"'" + _SPACES, max_size=20),
).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_assignment)
def test_the_python_path_reads_spaces_around_secrets_as_re2_does(text: str) -> None:
    # RE2's \s is [\t\n\f\r ]: every other space-like character is part of a value.
    assert _python_path([text]) == _arrow_path([text])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.none(), _utterance), min_size=0, max_size=8))
def test_the_python_path_redacts_a_small_batch_as_the_arrow_path_does(
    texts: list[str | None],
) -> None:
    assume(redact_module._fast_enough(texts))
    assert _python_path(texts) == _arrow_path(texts)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.none(), _utterance), min_size=1, max_size=8))
def test_redact_array_answers_small_batches_as_the_arrow_path_does(
    texts: list[str | None],
) -> None:
    redacted, counts = redact_array(pa.array(texts, type=pa.string()))
    assert (redacted.to_pylist(), counts.to_pylist()) == _arrow_path(texts)


# --- By hand -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected", "count"),
    [
        ("mail bob@example.com now", "mail <EMAIL> now", 1),
        ("card 4111 1111 1111 1111 and 4111111111111112", "card <CARD> and 4111111111111112", 1),
        ("from 10.0.0.1 to ::1", "from <IP> to <IP>", 2),
        ("call (415) 555-0132 or +44 20 7946 0958", "call <PHONE> or <PHONE>", 2),
        ("iban DE89 3704 0044 0532 0130 00 ok", "iban <IBAN> ok", 1),
        ("ssn 123-45-6789", "ssn <GOV_ID>", 1),
        ("https://u:p@host/?token=abc&page=2", "https://<SECRET>@host/?token=<SECRET>&page=2", 2),
        ("already <EMAIL> here", "already <EMAIL> here", 0),
        ("how do I reset my pin", "how do I reset my pin", 0),
        # RE2's \s is [\t\n\f\r ]: a vertical tab is part of the value, not space before it.
        ("password=\x0bhunter2", "password=<SECRET>", 1),
        ("x\x1cpassword: \x1chunter2", "x\x1cpassword: <SECRET>", 1),
        # RE2's \b is ASCII: "é" is not a word character, so the address starts a word.
        ("é10.0.0.1", "é<IP>", 1),
        # Case-insensitive names in any ASCII case.
        ("tOKEN=abc", "tOKEN=<SECRET>", 1),
        ("BEARER  abcdefghijklmnopq", "BEARER  <SECRET>", 1),
    ],
)
def test_hand_worked_texts_on_both_paths(text: str, expected: str, count: int) -> None:
    assert _python_path([text]) == ([expected], [count])
    assert _arrow_path([text]) == ([expected], [count])
    assert redact_text(text) == expected


def test_the_kelvin_sign_is_folded_like_re2_by_sending_it_to_the_arrow_path() -> None:
    # RE2 reads "to\u212aen" as "token" under (?i); Python's re.ASCII would not.
    text = "to\u212aen=abc123"
    assert not redact_module._fast_enough([text])
    assert redact_text(text) == "to\u212aen=<SECRET>"
    # The long s is folded into "s": "pa\u017f\u017fword" is a password name to RE2.
    long_s = "pa\u017f\u017fword=abc"
    assert _python_path([long_s]) == ([long_s], [0])  # what the Python path alone would say
    assert redact_text(long_s) == "pa\u017f\u017fword=<SECRET>"


def test_large_or_long_batches_take_the_arrow_path() -> None:
    assert redact_module._fast_enough(["a"] * redact_module.FAST_MAX_ROWS)
    assert not redact_module._fast_enough(["a"] * (redact_module.FAST_MAX_ROWS + 1))
    assert redact_module._fast_enough(["a" * redact_module.FAST_MAX_CHARS, None])
    assert not redact_module._fast_enough(["a" * redact_module.FAST_MAX_CHARS, "b"])


def test_the_translation_of_re2_syntax() -> None:
    translate = redact_module._python_pattern
    assert translate(r"a\s+b") == "a[\\t\\n\\f\\r ]+b"
    assert translate(r"[^\s<>]") == "[^\\t\\n\\f\\r <>]"
    assert translate(r"[\x{C0}-\x{10FFFF}]") == "[\\U000000C0-\\U0010FFFF]"
    assert translate(r"\bx\.\[y\]") == r"\bx\.\[y\]"
    assert redact_module._python_replacement(r"\1\2<SECRET>") == r"\g<1>\g<2><SECRET>"


def test_a_batch_with_nulls_keeps_them_null_with_zero_counts() -> None:
    redacted, counts = redact_array(pa.array([None, "a@b.co", None], type=pa.string()))
    assert redacted.to_pylist() == [None, "<EMAIL>", None]
    assert counts.to_pylist() == [0, 1, 0]


def test_the_only_characters_re2_folds_into_ascii_letters_are_the_two_sent_to_arrow() -> None:
    # RE2 itself is the oracle: every non-ASCII code point, matched case-insensitively against
    # the ASCII letters. Python's re.ASCII folds none of them; the gate must catch each one.
    chars = pa.array([chr(c) for c in range(0x80, 0x110000) if not 0xD800 <= c <= 0xDFFF])
    folded = chars.filter(pc.match_substring_regex(chars, pattern="(?i:[a-z])")).to_pylist()
    assert folded == ["\u017f", "\u212a"]
    assert all(not redact_module._fast_enough([c]) for c in folded)
