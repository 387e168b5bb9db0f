"""Privacy before storage: redaction of text and pseudonymisation of user ids.

Redaction
---------
:func:`redact_array` (a column) and :func:`redact_text` (one string) replace personal data and
secrets with typed placeholders. Rules run in this order, each on the output of the one before
(phone numbers written with ``+`` run earlier, see ``<PHONE>``):

``<SECRET>``
    Well-known key shapes (``sk-...``, ``sk_live_...``, AWS ``AKIA...``/``ASIA...``, GitHub
    ``ghp_...``/``github_pat_...``, GitLab ``glpat-...``, Slack ``xox?-...``, Google ``AIza...``,
    JSON Web Tokens ``eyJ...``, PEM private key blocks); the ``user:pass`` of a URL
    (``https://<SECRET>@host``); bearer tokens (16+ characters after ``Bearer``); the value of
    ``Authorization:``; values of ``password=``/``password:``, ``pwd``, ``passcode``,
    ``api_key``, ``access_key``, ``secret_key``, ``private_key``, ``access_token``,
    ``auth_token``, ``refresh_token``, ``id_token``, ``client_secret`` (also inside longer names
    such as ``db_password``, and in quotes as in JSON), of ``secret=`` and ``token=``, and of URL
    query parameters such as ``?token=``, ``&key=``, ``&sig=``, ``&code=``, ``&signature=``,
    ``X-Amz-Signature``. The name is kept: ``?token=<SECRET>&page=2``.
``<EMAIL>``
    ``local@domain.tld``, Unicode letters allowed. Obfuscated forms (``bob at example dot com``)
    are not covered.
``<IBAN>``
    Country code, 2 check digits and the BBAN, compact or in space-separated groups, any letter
    case, only if the ISO 7064 mod 97-10 check passes and the length is the one the SWIFT IBAN
    Registry (release 100) gives for the country. For a country missing from that copy, a
    compact IBAN of 15-34 characters that passes the check.
``<CARD>``
    13-19 digits, compact or in groups joined by single spaces or dashes where every group but
    the last has 4-6 digits (``4111 1111 1111 1111``, ``3782-822463-10005``), only if the Luhn
    check passes: a 16-digit order number that fails Luhn stays. About one random 16-digit
    number in ten passes Luhn, so some order numbers (and runs such as four 4-digit years) are
    redacted too.
``<GOV_ID>``
    US Social Security numbers and ITINs written ``123-45-6789`` or ``123 45 6789``; UK National
    Insurance numbers (``AB 12 34 56 C``, ``ab123456c``). Other countries' ids are not covered.
``<IP>``
    IPv4 dotted quads (octets 0-255) and IPv6 (full, compressed, zone ``%eth0``, IPv4-mapped).
    A dotted quad is redacted even if it is a version string: ``1.2.3.4`` becomes ``<IP>``
    (privacy wins; the version is rarely what matters in an utterance), while ``v1.2.3.4``,
    ``2.0.0`` and ``10.0.19045.1234`` stay. ``Class::method`` and MAC addresses stay.
``<PHONE>``
    ``+`` and 7-15 digits with spaces, dots, dashes or brackets (``+44 20 7946 0958``; this form
    runs before cards and government ids); North American numbers with area code:
    ``(415) 555-0132``, ``415-555-0132``, ``415.555.0132``, ``415 555 0132``, ``1-415-555-0132``;
    national numbers with a trunk ``0`` and a separator (``020 7946 0958``, ``07700 900123``).
    Dates (``2026-01-05``), times, small numbers, a bare run of digits (``4155550132``) and
    7-digit local numbers (``555-0132``) stay.

Small arrays (a few utterances, as a prediction request holds) are redacted by the same rules
precompiled in Python's ``re``, a large one by Arrow's RE2 kernels, which compile their
patterns on every call; both give the same answer (``redact_array``'s notes say when).

Placeholders are inert (no rule matches them), so redaction is idempotent and the count it
returns per row is the number of placeholders written. It fails closed: any error becomes a
:class:`~assay.PrivacyError` whose message holds no text. Not covered: names, postal addresses,
dates of birth, and secrets in prose ("my password is hunter2").

Pseudonyms
----------
A user is the pair (``tenant_id``, ``user_id``). Its stored id is
``"u_" + hex(HMAC-SHA256(key, len(t).to_bytes(4, "big") + t + u))[:32]`` where ``t`` and ``u``
are the UTF-8 bytes of the two ids: 128 bits, keyed, and unambiguous (the length prefix means no
two pairs share a message). The same ``user_id`` in two tenants gets two pseudonyms.
:func:`pseudonymise` computes one HMAC per distinct pair in a batch. The key (:func:`new_key`,
at least 16 bytes) lives in the workspace or ``ASSAY_SECRET`` and never in logs.
"""

from assay.privacy._pseudonym import MIN_KEY_BYTES, new_key, pseudonym, pseudonymise
from assay.privacy._redact import PLACEHOLDERS, redact_array, redact_text

__all__ = [
    "MIN_KEY_BYTES",
    "PLACEHOLDERS",
    "new_key",
    "pseudonym",
    "pseudonymise",
    "redact_array",
    "redact_text",
]
