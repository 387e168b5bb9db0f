"""Redaction: hand-worked examples per placeholder, properties, and the array contract."""

from __future__ import annotations

import ipaddress
import re

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import assay.privacy._redact as redact_module
from assay import PrivacyError
from assay.privacy import PLACEHOLDERS, redact_array, redact_text

# --- Independent helpers (written here, not imported from the code under test) ----------------


def luhn_checksum(number: str) -> int:
    """Luhn sum mod 10 of a digit string: 0 means valid."""
    total = 0
    for position, char in enumerate(number[::-1]):
        digit = int(char)
        if position % 2 == 1:
            digit = sum(divmod(digit * 2, 10))
        total += digit
    return total % 10


def luhn_complete(payload: str) -> str:
    """Append the Luhn check digit to ``payload``."""
    return payload + str((10 - luhn_checksum(payload + "0")) % 10)


def iban_with_check_digits(country: str, bban: str) -> str:
    """Build a valid IBAN (ISO 13616): check digits = 98 - (BBAN + country + '00' mod 97)."""
    remainder = 0
    for char in bban + country + "00":
        value = int(char) if char.isdigit() else ord(char) - ord("A") + 10
        for digit in str(value):
            remainder = (remainder * 10 + int(digit)) % 97
    return f"{country}{98 - remainder:02d}{bban}"


def group4(compact: str, sep: str = " ") -> str:
    return sep.join(compact[i : i + 4] for i in range(0, len(compact), 4))


def test_helpers_agree_with_published_examples() -> None:
    # Test-card numbers published by card networks, and the SWIFT registry's German example.
    for card in ("4111111111111111", "5555555555554444", "378282246310005", "6011111111111117"):
        assert luhn_checksum(card) == 0
    assert luhn_complete("411111111111111") == "4111111111111111"
    assert iban_with_check_digits("DE", "370400440532013000") == "DE89370400440532013000"
    assert iban_with_check_digits("GB", "NWBK60161331926819") == "GB29NWBK60161331926819"


# --- Hand-worked examples -----------------------------------------------------------------------

EXAMPLES: list[tuple[str, str, int]] = [
    # EMAIL
    ("mail john.doe@example.com now", "mail <EMAIL> now", 1),
    ("write to josé.müller@beispiel.de.", "write to <EMAIL>.", 1),
    ("mailto:bob+tag@sub.example.co.uk", "mailto:<EMAIL>", 1),
    ("ping @alice on slack", "ping @alice on slack", 0),
    ("user@localhost", "user@localhost", 0),
    # CARD (Luhn valid only)
    ("card 4111 1111 1111 1111 ok", "card <CARD> ok", 1),
    ("card 4111-1111-1111-1111", "card <CARD>", 1),
    ("amex 3782-822463-10005 thanks", "amex <CARD> thanks", 1),
    ("mc 5555555555554444.", "mc <CARD>.", 1),
    ("two 4111 1111 1111 1111 and 6011 1111 1111 1117", "two <CARD> and <CARD>", 2),
    ("qty 1 4111 1111 1111 1111 2 left", "qty 1 <CARD> 2 left", 1),
    ("order 4111 1111 1111 1112 stays", "order 4111 1111 1111 1112 stays", 0),
    ("order number 1234567812345678", "order number 1234567812345678", 0),
    ("count 1 2 3 4 5 6 7 8 9 10 11 12 13", "count 1 2 3 4 5 6 7 8 9 10 11 12 13", 0),
    # IBAN (mod 97 and registry length)
    ("iban DE89 3704 0044 0532 0130 00 is mine", "iban <IBAN> is mine", 1),
    ("GB29NWBK60161331926819", "<IBAN>", 1),
    ("lower gb29 nwbk 6016 1331 9268 19 ok", "lower <IBAN> ok", 1),
    ("NO9386011117947 and FR1420041010050500013M02606", "<IBAN> and <IBAN>", 2),
    ("bad DE88370400440532013000 check", "bad DE88370400440532013000 check", 0),
    # GOV_ID
    ("ssn 123-45-6789 on file", "ssn <GOV_ID> on file", 1),
    ("ssn 078 05 1120", "ssn <GOV_ID>", 1),
    ("NI number AB 12 34 56 C", "NI number <GOV_ID>", 1),
    ("ni ab123456c please", "ni <GOV_ID> please", 1),
    # IP
    ("from 10.0.0.1 and 192.168.1.254", "from <IP> and <IP>", 2),
    ("dns 1.1.1.1", "dns <IP>", 1),
    ("v6 2001:db8::1 here", "v6 <IP> here", 1),
    ("2001:0db8:85a3:0000:0000:8a2e:0370:7334", "<IP>", 1),
    ("loopback ::1", "loopback <IP>", 1),
    ("(::ffff:192.0.2.1)", "(<IP>)", 1),
    ("link fe80::1%eth0 up", "link <IP> up", 1),
    ("prefix 2001:db8:: end", "prefix <IP> end", 1),
    # Version strings: a dotted quad is taken for an address (documented), others stay.
    ("upgrade to 1.2.3.4", "upgrade to <IP>", 1),
    ("upgrade to v1.2.3.4", "upgrade to v1.2.3.4", 0),
    ("version 2.0.0", "version 2.0.0", 0),
    ("build 10.0.19045.1234", "build 10.0.19045.1234", 0),
    ("256.1.1.1", "256.1.1.1", 0),
    ("std::vector and Interface::add", "std::vector and Interface::add", 0),
    ("MAC 00:1A:2B:3C:4D:5E", "MAC 00:1A:2B:3C:4D:5E", 0),
    # PHONE
    ("call +44 20 7946 0958 now", "call <PHONE> now", 1),
    ("call me at +1 (415) 555-0132", "call me at <PHONE>", 1),
    ("(415) 555-0132", "<PHONE>", 1),
    ("415-555-0132 or 415.555.0132", "<PHONE> or <PHONE>", 2),
    ("1-415-555-0132", "<PHONE>", 1),
    ("office 020 7946 0958", "office <PHONE>", 1),
    ("mobile 07700 900123", "mobile <PHONE>", 1),
    ("on 2026-01-05 at 10:30:45", "on 2026-01-05 at 10:30:45", 0),
    ("2026-01-05T10:00:00Z", "2026-01-05T10:00:00Z", 0),
    ("I need 2 tickets for 3 people on 5/12", "I need 2 tickets for 3 people on 5/12", 0),
    ("room 1234, call 911, pay $1,234.56 (20%)", "room 1234, call 911, pay $1,234.56 (20%)", 0),
    ("pi is 3.14159265358979", "pi is 3.14159265358979", 0),
    # SECRET
    ("https://x.io/reset?token=abc123&page=2", "https://x.io/reset?token=<SECRET>&page=2", 1),
    ("u?api_key=XYZ&sig=abc%2F", "u?api_key=<SECRET>&sig=<SECRET>", 2),
    ("s3?X-Amz-Signature=deadbeef", "s3?X-Amz-Signature=<SECRET>", 1),
    ("cb?code=4111111111111111", "cb?code=<SECRET>", 1),
    ("password=hunter2 ok", "password=<SECRET> ok", 1),
    ('{"password": "hunter2"}', '{"password": "<SECRET>"}', 1),
    ("DB_PASSWORD = s3cr3t;", "DB_PASSWORD = <SECRET>;", 1),
    ("access_token: ya29.a0Af", "access_token: <SECRET>", 1),
    ("https://alice:s3cret@example.com/x", "https://<SECRET>@example.com/x", 1),
    ("Authorization: Bearer abcdefghijklmnop1234", "Authorization: Bearer <SECRET>", 1),
    ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic <SECRET>", 1),
    ("header bearer abcdefghijklmnopqrst", "header bearer <SECRET>", 1),
    ("key sk-proj-abcdefghijklmnopqrstuvwx", "key <SECRET>", 1),
    ("aws AKIAIOSFODNN7EXAMPLE", "aws <SECRET>", 1),
    ("gh ghp_abcdefghijklmnopqrstuvwxyz0123456789", "gh <SECRET>", 1),
    ("slack xoxb-1234567890-abcdefghij", "slack <SECRET>", 1),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_nature", "jwt <SECRET>", 1),
    (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY----- end",
        "<SECRET> end",
        1,
    ),
    ("the bearer of bad news", "the bearer of bad news", 0),
    ("the secret: keep calm", "the secret: keep calm", 0),
    ("max_tokens=5", "max_tokens=5", 0),
    # Order: a secret in a URL wins over the email / card it looks like.
    ("token=4111111111111111", "token=<SECRET>", 1),
    ("password=bob@example.com", "password=<SECRET>", 1),
    # Placeholders typed by the user are left alone and not counted.
    ("already <EMAIL> and <CARD>", "already <EMAIL> and <CARD>", 0),
    ("password=<SECRET>", "password=<SECRET>", 0),
    ("", "", 0),
]


@pytest.mark.parametrize(("text", "expected", "count"), EXAMPLES)
def test_redact_array_matches_hand_worked_examples(text: str, expected: str, count: int) -> None:
    redacted, counts = redact_array(pa.array([text]))
    assert redacted.to_pylist() == [expected]
    assert counts.to_pylist() == [count]


def test_redact_text_matches_hand_worked_examples() -> None:
    assert [redact_text(text) for text, _, _ in EXAMPLES] == [e for _, e, _ in EXAMPLES]


def test_hand_worked_examples_in_one_batch_match_one_by_one() -> None:
    redacted, counts = redact_array(pa.array([text for text, _, _ in EXAMPLES]))
    assert redacted.to_pylist() == [expected for _, expected, _ in EXAMPLES]
    assert counts.to_pylist() == [count for _, _, count in EXAMPLES]


def test_every_placeholder_is_exercised_by_the_examples() -> None:
    written = {p for _, expected, _ in EXAMPLES for p in re.findall(r"<[A-Z_]+>", expected)}
    assert written == set(PLACEHOLDERS)
    assert set(PLACEHOLDERS) == {
        "<EMAIL>",
        "<PHONE>",
        "<CARD>",
        "<IBAN>",
        "<IP>",
        "<GOV_ID>",
        "<SECRET>",
    }


# --- Array contract -----------------------------------------------------------------------------


def test_nulls_stay_null_with_zero_count() -> None:
    redacted, counts = redact_array(pa.array([None, "a@b.co", None, "plain"]))
    assert redacted.to_pylist() == [None, "<EMAIL>", None, "plain"]
    assert counts.to_pylist() == [0, 1, 0, 0]
    assert redacted.type == pa.string()
    assert counts.type == pa.int32()


def test_all_null_and_empty_arrays() -> None:
    redacted, counts = redact_array(pa.array([None, None], type=pa.string()))
    assert redacted.to_pylist() == [None, None]
    assert counts.to_pylist() == [0, 0]
    redacted, counts = redact_array(pa.array([], type=pa.string()))
    assert (len(redacted), len(counts)) == (0, 0)
    assert (redacted.type, counts.type) == (pa.string(), pa.int32())


@pytest.mark.parametrize("string_type", [pa.string(), pa.large_string(), pa.string_view()])
def test_string_types_are_accepted_and_return_string(string_type: pa.DataType) -> None:
    values = pa.array(["ip 10.0.0.1", None, "ok"], type=string_type)
    redacted, counts = redact_array(values)
    assert redacted.type == pa.string()
    assert redacted.to_pylist() == ["ip <IP>", None, "ok"]
    assert counts.to_pylist() == [1, 0, 0]


def test_chunked_array_is_redacted_across_chunks() -> None:
    values = pa.chunked_array(
        [["a@b.co", "x"], [], [None, "ssn 123-45-6789"]], type=pa.large_string()
    )
    redacted, counts = redact_array(values)
    assert isinstance(redacted, pa.Array)
    assert redacted.to_pylist() == ["<EMAIL>", "x", None, "ssn <GOV_ID>"]
    assert counts.to_pylist() == [1, 0, 0, 1]
    empty, empty_counts = redact_array(pa.chunked_array([], type=pa.string()))
    assert (len(empty), len(empty_counts)) == (0, 0)


def test_repeated_rows_are_each_redacted() -> None:
    # The Luhn and IBAN checks run once per distinct row; every copy must still be rewritten.
    values = pa.array(["card 4111111111111111"] * 3 + ["iban NO9386011117947"] * 2 + ["x"])
    redacted, counts = redact_array(values)
    assert redacted.to_pylist() == ["card <CARD>"] * 3 + ["iban <IBAN>"] * 2 + ["x"]
    assert counts.to_pylist() == [1, 1, 1, 1, 1, 0]


@pytest.mark.parametrize(
    "values",
    [pa.array([1, 2]), pa.array([b"a@b.co"]), ["a@b.co"], None, "a@b.co", pa.scalar("a@b.co")],
)
def test_non_string_input_raises_privacy_error(values: object) -> None:
    with pytest.raises(PrivacyError, match="expected a pyarrow string array"):
        redact_array(values)


def test_redact_text_rejects_non_str_and_unencodable_text() -> None:
    with pytest.raises(PrivacyError, match="expected str"):
        redact_text(b"a@b.co")  # type: ignore[arg-type]
    with pytest.raises(PrivacyError, match="UTF-8") as info:
        redact_text("lone \ud800 surrogate bob@example.com")
    assert "bob@example.com" not in str(info.value)


def test_failure_inside_redaction_fails_closed_without_the_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret_text = "card 4111111111111111 of alice@example.com"

    def explode(text: str) -> str:
        raise ValueError(f"cannot handle {text!r}")

    broken = redact_module._Rule("card", "<CARD>", r"[0-9]{13}", rewrite_row=explode)
    monkeypatch.setattr(redact_module, "RULES", (*redact_module.RULES[:7], broken))
    with pytest.raises(PrivacyError) as info:
        redact_array(pa.array([secret_text]))
    assert "4111" not in str(info.value)
    assert "alice" not in str(info.value)
    assert "ValueError" in str(info.value)
    # Nothing chained: a traceback printed later would otherwise show the text.
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    with pytest.raises(PrivacyError):
        redact_text(secret_text)


# --- Properties ---------------------------------------------------------------------------------

# Surrounding words: anything but a secret's name, which rightly takes what follows it
# ("pwd ::1" reads as the assignment "pwd :<SECRET>").
SECRET_NAME = re.compile(r"pwd|passwd|passcode|password|apikey|idtoken|bearer")
WORDS = st.from_regex(r"[a-z]{1,8}", fullmatch=True).filter(lambda w: not SECRET_NAME.search(w))
HEX4 = st.integers(0, 0xFFFF)


@st.composite
def emails(draw: st.DrawFn) -> tuple[str, str]:
    local = draw(st.from_regex(r"[a-z0-9][a-z0-9._+\-]{0,11}", fullmatch=True))
    labels = draw(
        st.lists(st.from_regex(r"[a-z0-9]{1,10}", fullmatch=True), min_size=1, max_size=3)
    )
    tld = draw(st.from_regex(r"[a-z]{2,6}", fullmatch=True))
    return f"{local}@{'.'.join(labels)}.{tld}", "<EMAIL>"


@st.composite
def cards(draw: st.DrawFn) -> tuple[str, str]:
    length = draw(st.integers(13, 19))
    payload = draw(st.from_regex(rf"[1-9][0-9]{{{length - 2}}}", fullmatch=True))
    number = luhn_complete(payload)
    style = draw(st.sampled_from(["compact", " ", "-"]))
    return (number if style == "compact" else group4(number, style)), "<CARD>"


# IBAN lengths of a few countries, from the SWIFT registry examples (checked above for DE, GB).
IBAN_LENGTHS = {"DE": 22, "GB": 22, "FR": 27, "NL": 18, "NO": 15, "BE": 16, "IT": 27, "MT": 31}


@st.composite
def ibans(draw: st.DrawFn) -> tuple[str, str]:
    country = draw(st.sampled_from(sorted(IBAN_LENGTHS)))
    bban = draw(st.from_regex(rf"[A-Z0-9]{{{IBAN_LENGTHS[country] - 4}}}", fullmatch=True))
    iban = iban_with_check_digits(country, bban)
    style = draw(st.sampled_from(["compact", "grouped", "lower"]))
    text = {"compact": iban, "grouped": group4(iban), "lower": group4(iban).lower()}[style]
    return text, "<IBAN>"


@st.composite
def ipv4s(draw: st.DrawFn) -> tuple[str, str]:
    return ".".join(str(draw(st.integers(0, 255))) for _ in range(4)), "<IP>"


@st.composite
def ipv6s(draw: st.DrawFn) -> tuple[str, str]:
    groups = draw(st.lists(st.one_of(st.just(0), HEX4), min_size=8, max_size=8))
    address = ipaddress.IPv6Address(b"".join(g.to_bytes(2, "big") for g in groups))
    if int(address) == 0:
        address = ipaddress.IPv6Address(1)
    text = address.exploded if draw(st.booleans()) else address.compressed
    return text, "<IP>"


@st.composite
def gov_ids(draw: st.DrawFn) -> tuple[str, str]:
    if draw(st.booleans()):
        return draw(st.from_regex(r"[0-9]{3}-[0-9]{2}-[0-9]{4}", fullmatch=True)), "<GOV_ID>"
    prefix = draw(st.from_regex(r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]", fullmatch=True))
    digits = draw(st.from_regex(r"[0-9]{6}", fullmatch=True))
    suffix = draw(st.sampled_from("ABCD"))
    if draw(st.booleans()):
        return f"{prefix} {digits[:2]} {digits[2:4]} {digits[4:]} {suffix}", "<GOV_ID>"
    return f"{prefix}{digits}{suffix}", "<GOV_ID>"


@st.composite
def phones(draw: st.DrawFn) -> tuple[str, str]:
    def digits(n: int) -> str:
        return draw(st.from_regex(rf"[0-9]{{{n}}}", fullmatch=True))

    style = draw(st.sampled_from(["intl", "paren", "dash", "dot", "space", "one", "national"]))
    area, exchange, line = digits(3), digits(3), digits(4)
    if style == "intl":
        country = draw(st.from_regex(r"[1-9][0-9]{0,2}", fullmatch=True))
        layout = draw(st.sampled_from([(2, 4, 4), (3, 3, 4), (4, 4), (3, 4), (1, 4, 4)]))
        return f"+{country} " + " ".join(digits(n) for n in layout), "<PHONE>"
    if style == "national":
        return f"0{digits(draw(st.integers(2, 3)))} {digits(4)} {digits(4)}", "<PHONE>"
    text = {
        "paren": f"({area}) {exchange}-{line}",
        "dash": f"{area}-{exchange}-{line}",
        "dot": f"{area}.{exchange}.{line}",
        "space": f"{area} {exchange} {line}",
        "one": f"1-{area}-{exchange}-{line}",
    }[style]
    return text, "<PHONE>"


@st.composite
def secrets_(draw: st.DrawFn) -> tuple[str, str]:
    value = draw(st.from_regex(r"[A-Za-z0-9!#$%*+./:?@^_~\-]{4,20}", fullmatch=True))
    token = draw(st.from_regex(r"[A-Za-z0-9]{20,40}", fullmatch=True))
    kind = draw(st.sampled_from(["url", "password", "bearer", "aws", "github", "sk", "basic"]))
    if kind == "url":
        return (
            f"https://app.example.com/cb?token={token}",
            "https://app.example.com/cb?token=<SECRET>",
        )
    if kind == "password":
        return f"password={value}", "password=<SECRET>"
    if kind == "bearer":
        return f"Bearer {token}", "Bearer <SECRET>"
    if kind == "aws":
        return "AKIA" + draw(st.from_regex(r"[A-Z0-9]{16}", fullmatch=True)), "<SECRET>"
    if kind == "github":
        return "ghp_" + draw(st.from_regex(r"[A-Za-z0-9]{36}", fullmatch=True)), "<SECRET>"
    if kind == "sk":
        return f"sk-{token}", "<SECRET>"
    user = draw(st.from_regex(r"[a-z0-9]{1,10}", fullmatch=True))
    password = draw(st.from_regex(r"[A-Za-z0-9!$*_~\-]{1,12}", fullmatch=True))
    return f"https://{user}:{password}@example.com/x", "https://<SECRET>@example.com/x"


PII = st.one_of(emails(), cards(), ibans(), ipv4s(), ipv6s(), gov_ids(), phones(), secrets_())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=st.lists(WORDS, max_size=4), pii=PII, after=st.lists(WORDS, max_size=4))
def test_injected_pii_never_survives_and_surrounding_words_do(
    before: list[str], pii: tuple[str, str], after: list[str]
) -> None:
    raw, expected = pii
    text = " ".join([*before, raw, *after])
    redacted = redact_text(text)
    assert raw not in redacted
    assert redacted == " ".join([*before, expected, *after])


@st.composite
def harmless_tokens(draw: st.DrawFn) -> str:
    year, month, day = (
        draw(st.integers(1900, 2100)),
        draw(st.integers(1, 12)),
        draw(st.integers(1, 28)),
    )
    hour, minute, second = (
        draw(st.integers(0, 23)),
        draw(st.integers(0, 59)),
        draw(st.integers(0, 59)),
    )
    return draw(
        st.sampled_from(
            [
                f"{year}-{month:02d}-{day:02d}",
                f"{day:02d}/{month:02d}/{year}",
                f"{day:02d}.{month:02d}.{year}",
                f"{hour:02d}:{minute:02d}",
                f"{hour:02d}:{minute:02d}:{second:02d}",
                f"{year}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}Z",
                str(draw(st.integers(0, 99_999))),
                f"{draw(st.integers(0, 999))}.{draw(st.integers(0, 99))}",
                f"{draw(st.integers(0, 100))}%",
                "v" + ".".join(str(draw(st.integers(0, 20))) for _ in range(3)),
            ]
        )
    )


@settings(deadline=None)
@given(st.lists(st.tuples(WORDS, harmless_tokens()), max_size=6))
def test_dates_times_and_small_numbers_stay(pairs: list[tuple[str, str]]) -> None:
    text = " ".join(f"{word} {token}" for word, token in pairs)
    assert redact_text(text) == text


@settings(deadline=None)
@given(st.from_regex(r"[1-9][0-9]{14}", fullmatch=True), st.integers(1, 9))
def test_luhn_failing_16_digit_numbers_stay(payload: str, shift: int) -> None:
    valid = luhn_complete(payload)
    invalid = valid[:-1] + str((int(valid[-1]) + shift) % 10)
    assert luhn_checksum(invalid) != 0
    text = f"order {invalid} shipped"
    assert redact_text(text) == text


TEXT_WITH_PII = st.one_of(
    st.text(max_size=80),
    st.tuples(st.text(max_size=20), PII, st.text(max_size=20)).map(lambda t: t[0] + t[1][0] + t[2]),
)


@settings(max_examples=200, deadline=None)
@given(TEXT_WITH_PII)
def test_redaction_is_idempotent(text: str) -> None:
    once = redact_text(text)
    assert redact_text(once) == once
    _, counts = redact_array(pa.array([once]))
    assert counts.to_pylist() == [0]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), TEXT_WITH_PII), max_size=12))
def test_redact_array_equals_redact_text_per_element(values: list[str | None]) -> None:
    redacted, counts = redact_array(pa.array(values, type=pa.string()))
    assert redacted.to_pylist() == [None if v is None else redact_text(v) for v in values]
    singles = [redact_array(pa.array([v], type=pa.string()))[1][0].as_py() for v in values]
    assert counts.to_pylist() == singles
    for value, count in zip(values, counts.to_pylist(), strict=True):
        if value is None:
            assert count == 0


@settings(max_examples=100, deadline=None)
@given(st.lists(TEXT_WITH_PII, min_size=1, max_size=12))
def test_prefilter_skips_only_rows_that_no_rule_would_change(values: list[str]) -> None:
    # The fast path runs the rules only on rows the combined pattern matches; running every
    # rule over every row must give the same text.
    everything = pa.array(values, type=pa.string())
    for rule in redact_module.RULES:
        everything = redact_module._apply_rule(rule, everything)
    redacted, _ = redact_array(pa.array(values))
    assert redacted.to_pylist() == everything.to_pylist()


def test_sliced_array_is_redacted_from_its_offset() -> None:
    values = pa.array(["a@b.co", "keep", "ip 10.0.0.1", "x"]).slice(1, 2)
    redacted, counts = redact_array(values)
    assert redacted.to_pylist() == ["keep", "ip <IP>"]
    assert counts.to_pylist() == [0, 1]
