"""Fake personal data to plant in synthetic utterances, in the formats redaction must catch.

Every value is fabricated from the seeded generator and uses reserved or fictional ranges where
they exist (``example.com`` mail domains, ``555-01xx`` and ``020 7946 0xxx`` phone numbers,
documentation IPv4 blocks), but card numbers pass the Luhn check and IBANs pass ISO 7064
mod 97-10, as real ones would.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable

#: The kinds of planted personal data and their relative frequencies.
PII_KINDS: dict[str, float] = {
    "email": 0.3,
    "phone": 0.25,
    "card": 0.15,
    "iban": 0.15,
    "ipv4": 0.15,
}

_FIRST = ("jane", "john", "maria", "wei", "fatima", "lukas", "aiko", "pierre", "amara", "omar")
_LAST = ("doe", "smith", "garcia", "chen", "khan", "muller", "tanaka", "martin", "okafor", "ali")
_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")


def email(r: random.Random) -> str:
    """A fictional e-mail address on a reserved domain."""
    first, last = r.choice(_FIRST), r.choice(_LAST)
    sep = r.choice((".", "_", ""))
    number = str(r.randrange(100)) if r.random() < 0.4 else ""
    return f"{first}{sep}{last}{number}@{r.choice(_DOMAINS)}"


def phone(r: random.Random) -> str:
    """A fictional phone number in one of several national formats."""
    kind = r.randrange(5)
    if kind == 0:
        return f"+1 555-01{r.randrange(100):02d}-{r.randrange(10000):04d}"
    if kind == 1:
        return f"(555) 01{r.randrange(10)}-{r.randrange(10000):04d}"
    if kind == 2:
        return f"+44 20 7946 0{r.randrange(1000):03d}"
    if kind == 3:
        return f"+49 30 {r.randrange(10**7, 10**8)}"
    return "+33 1 " + " ".join(f"{r.randrange(100):02d}" for _ in range(4))


def luhn_check_digit(digits: str) -> str:
    """The digit that makes ``digits + it`` pass the Luhn check."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def card(r: random.Random) -> str:
    """A Luhn-valid 16-digit card number (Visa- or Mastercard-shaped), grouped or not."""
    prefix = "4" if r.random() < 0.6 else f"5{r.randint(1, 5)}"
    body = prefix + "".join(r.choice(string.digits) for _ in range(15 - len(prefix)))
    number = body + luhn_check_digit(body)
    sep = r.choice((" ", "-", ""))
    return sep.join(number[i : i + 4] for i in range(0, 16, 4))


def iban_check_digits(country: str, bban: str) -> str:
    """ISO 13616 check digits: 98 minus the mod-97 remainder of the rearranged number."""
    rearranged = bban + country + "00"
    numeric = "".join(str(int(ch, 36)) for ch in rearranged)
    return f"{98 - int(numeric) % 97:02d}"


def iban(r: random.Random) -> str:
    """A mod-97-valid German, British or French IBAN, compact or in groups of four."""
    country = r.choice(("DE", "GB", "FR"))
    if country == "DE":
        bban = "".join(r.choice(string.digits) for _ in range(18))
    elif country == "GB":
        bban = "NWBK" + "".join(r.choice(string.digits) for _ in range(14))
    else:
        bban = "".join(r.choice(string.digits) for _ in range(23))
    value = country + iban_check_digits(country, bban) + bban
    if r.random() < 0.5:
        return " ".join(value[i : i + 4] for i in range(0, len(value), 4))
    return value


def ipv4(r: random.Random) -> str:
    """An IPv4 address from a documentation block or a private range."""
    block = r.choice(
        ("192.0.2", "198.51.100", "203.0.113", f"10.{r.randrange(256)}.{r.randrange(256)}")
    )
    return f"{block}.{r.randrange(1, 255)}"


_MAKERS: dict[str, Callable[[random.Random], str]] = {
    "email": email,
    "phone": phone,
    "card": card,
    "iban": iban,
    "ipv4": ipv4,
}

_PHRASES: dict[str, tuple[str, ...]] = {
    "email": ("my email is {}", "you can reach me at {}", "send the details to {}"),
    "phone": ("call me at {}", "my number is {}", "text me on {}"),
    "card": ("my card number is {}", "charge it to {}", "the card is {}"),
    "iban": ("my iban is {}", "send the refund to {}", "account {}"),
    "ipv4": ("my ip address is {}", "i am connecting from {}", "the server is {}"),
}


def pii_value(kind: str, r: random.Random) -> str:
    """A fabricated value of ``kind`` (a key of :data:`PII_KINDS`)."""
    return _MAKERS[kind](r)


def with_pii(utterance: str, kind: str, r: random.Random) -> str:
    """``utterance`` with a sentence holding a fabricated ``kind`` value added before or after."""
    phrase = r.choice(_PHRASES[kind]).format(pii_value(kind, r))
    if r.random() < 0.5:
        return f"{utterance}, {phrase}"
    return f"{phrase}. {utterance}"
