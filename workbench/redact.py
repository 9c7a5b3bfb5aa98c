"""Redaction of personal data and secrets in free text: what reports show and what the LLM judge may send.

:func:`redact` replaces, with a readable placeholder,

========================  ================  ======================================================================
what                      placeholder       how it is recognised
========================  ================  ======================================================================
API keys and tokens       ``[api_key]``     the published shapes: OpenAI/Anthropic ``sk-...``, xAI ``xai-``,
                                            Groq ``gsk_``, Perplexity ``pplx-``, Stripe ``sk_live_``, AWS
                                            ``AKIA...``, GitHub ``ghp_``/``github_pat_``, Slack ``xox?-``/``xapp-``,
                                            Google ``AIza...``/``ya29.``, Hugging Face ``hf_``, GitLab ``glpat-``,
                                            npm ``npm_``, PyPI ``pypi-``, SendGrid ``SG.``, ``whsec_``, JWTs,
                                            ``Bearer <token>``, ``Authorization: Basic ...``, the password of a
                                            URL (``postgres://user:[api_key]@host``), and settings that name a
                                            secret: ``api_key=...``, ``password: "..."``, ``AWS_SECRET_ACCESS_KEY=``,
                                            any ``*_token`` / ``*_secret``, ``?token=`` and ``"secret": "..."``
                                            (a quoted value whole, with the quotes escaped inside it)
e-mail addresses          ``[email]``       ``local@domain.tld`` in any script (``иван@пример.рф``), quoted
                                            local parts (``"john doe"@example.com``), IP literal domains
                                            (``user@[192.0.2.1]``)
IBANs                     ``[iban]``        country code, check digits, 11-30 characters, ISO 13616 mod-97 check;
                                            in capitals, or in small letters from a country that uses IBANs
card numbers              ``[card]``        13-19 digits (spaces or dashes between groups), Luhn check
national ids              ``[national_id]`` US SSN ``123-45-6789`` (valid area/group/serial), UK NINO ``AB123456C``
phone numbers             ``[phone]``       ``+`` or ``00`` and 8-15 digits, North American ``(555) 123-4567``,
                                            ``555-123-4567``, national ``0`` + 9-11 digits in groups
                                            (``020 7946 0958``)
========================  ================  ======================================================================

Checksums (Luhn, mod-97) and shape rules keep near misses as they are: dates, times, version numbers, prices, order
numbers that fail the check, ``sk-learn``, a bare ``@mention``. A text cut short by a display (ending in ``…``) has
its last, partial token redacted when it starts like an address, a key or a long number, so truncation cannot leak
half of one.

Reports show text through :func:`redact_frame` unless ``workbench.toml`` says ``[privacy] show_raw_text = true``
(:func:`show_raw_text`); the judge sends redacted text when ``[judge] redact = true``.

Examples
--------
>>> redact("Mail jane.doe@example.com or call +44 20 7946 0958, card 4111 1111 1111 1111.")
'Mail [email] or call [phone], card [card].'
>>> redact("key sk-proj-abcdefghijklmnopqrstuvwx, SSN 123-45-6789, IBAN GB82 WEST 1234 5698 7654 32")
'key [api_key], SSN [national_id], IBAN [iban]'
>>> redact("Version 1.2.3 shipped on 2026-11-23 at 10:30 for $1,234.56 (order 4111 1111 1111 1112).")
'Version 1.2.3 shipped on 2026-11-23 at 10:30 for $1,234.56 (order 4111 1111 1111 1112).'
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import polars as pl

__all__ = ["redact", "redact_frame", "show_raw_text", "PLACEHOLDERS"]

PLACEHOLDERS = ("[api_key]", "[email]", "[iban]", "[card]", "[national_id]", "[phone]")

_B = r"(?<![\w@.+-])"  # left boundary: not inside a word, address or number
_E = r"(?![\w@-]|\.\w)"  # right boundary

# The published shapes of API keys and tokens, as (prefix, rest): the prefix alone also marks a key that a truncation
# cut short ("sk-proj-abc…", :func:`_truncated_tail`).
_KEY_SHAPES = (
    (r"sk-", r"(?:proj-|ant-(?:api\d\d-)?|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}"),  # OpenAI, Anthropic
    (r"xai-", r"[A-Za-z0-9]{32,}"),  # xAI
    (r"gsk_", r"[A-Za-z0-9]{32,}"),  # Groq
    (r"pplx-", r"[A-Za-z0-9]{32,}"),  # Perplexity
    (r"(?:sk|rk|pk)_", r"(?:live|test)_[A-Za-z0-9]{16,}"),  # Stripe
    (r"(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)", r"[0-9A-Z]{16}\b"),  # AWS access key ids
    (r"gh[pousr]_", r"[A-Za-z0-9]{36,}"),  # GitHub tokens
    (r"github_pat_", r"[A-Za-z0-9_]{22,}"),
    (r"xox[abeposr]-", r"[A-Za-z0-9-]{10,}"),  # Slack tokens
    (r"xapp-", r"\d-[A-Za-z0-9-]{10,}"),  # Slack app-level tokens
    (r"AIza", r"[0-9A-Za-z_\-]{35}"),  # Google API keys
    (r"hf_", r"[A-Za-z0-9]{30,}"),  # Hugging Face
    (r"glpat-", r"[A-Za-z0-9_\-]{20,}"),  # GitLab
    (r"ya29\.", r"[A-Za-z0-9_\-]{20,}"),  # Google OAuth access tokens
    (r"npm_", r"[A-Za-z0-9]{36}\b"),  # npm
    (r"pypi-AgE", r"[A-Za-z0-9_\-]{50,}"),  # PyPI
    (r"SG\.", r"[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}"),  # SendGrid
    (r"whsec_", r"[A-Za-z0-9+/=]{24,}"),  # Stripe webhook signing secrets
    (r"eyJ", r"[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),  # JWT
)
_KEYS = re.compile("|".join(rf"\b{prefix}{rest}" for prefix, rest in _KEY_SHAPES))
_KEY_PREFIX = re.compile(r"[\"'(]?(?:" + "|".join(prefix for prefix, _ in _KEY_SHAPES) + ")")
# A setting that names a secret: api_key, password... and any name ending in one (AWS_SECRET_ACCESS_KEY,
# ANTHROPIC_API_KEY, db_password), or in _token / _secret (refresh_token, MY_SERVICE_TOKEN)
_SECRET_NAME = (r"(?:[a-z0-9]+[_-])*(?:api[_-]?key|apikey|access[_-]?key|secret[_-]?key|client[_-]?secret"
                r"|private[_-]?key|password|passwd|pwd)|(?:[a-z0-9]+[_-])+(?:token|secret)")
# "Bearer <token>", "Authorization: Basic <credentials>", "api_key = ...", "password: ...", and a bare token or secret
# set as code and JSON set it ("token=...", '"secret": "..."'; not prose's "The secret: ..."): the label stays, the
# value goes -- a quoted one whole, to its closing quote (past a quote escaped inside it: "a\"b"; a JSON text held in
# a JSON string quotes with \": {\"password\": \"...\"}); an unquoted one to a space, quote, comma, ; or &. A quoted
# value is read one way only (possessive): a run of backslashes with no closing quote is not tried 2^n ways.
_ASSIGNED = re.compile(
    r"(?i)(?P<label>\bbearer\s+"
    r"|\bauthorization\b(?:\\?[\"'])?\s*[:=]\s*(?:\\?[\"'])?(?:(?:basic|bearer|token|digest)\s+)?"
    rf"|(?<![\w-])(?:{_SECRET_NAME})\b(?:\\?[\"'])?\s*[:=]\s*"
    r"|(?<![\w-])(?:token|secret)\b(?:\\?[\"']\s*:|\s*=)\s*)"
    r"(?:(?P<q>\\?[\"'])(?P<quoted>(?:(?!(?P=q))(?:\\\\\\[\"']|\\[^\r\n]|[^\\\r\n])){1,256}+)(?=(?P=q))"
    r"|(?P<q2>[\"']?)(?P<plain>[^\s\"',;&]{6,}))"
)
# the password of a URL's user information: scheme://user:password@host
_URL_PASSWORD = re.compile(r"(?<=://)([^\s/:@]{0,64}):[^\s/@]{1,128}@")


def _assigned(m: re.Match) -> str:
    if m.group("plain") is not None and len(m.group("plain")) < 8 and m.group("label")[:6].lower() == "bearer":
        return m.group(0)  # "bearer tokens": prose; a bearer token is longer
    return m.group("label") + (m.group("q") or m.group("q2") or "") + "[api_key]"


# Combining marks, which Python's \w leaves out: a letter's vowel sign in Devanagari, Tamil or Thai ("डाटा"), Hebrew and
# Arabic points, accents written apart, joiners. A word of such a script is \w and these.
_MARKS = ("\u0300-\u036f\u0483-\u0489\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0900-\u0dff"
          "\u0e00-\u0eff\u1000-\u109f\u200c\u200d\u3099\u309a")
_LETTER = rf"(?:[^\W_]|[{_MARKS}])"  # a letter (any script) or digit
_LABEL = rf"{_LETTER}(?:[\w{_MARKS}-]{{0,62}}{_LETTER})?"  # a domain label, also of an IDN ("пример", "müller")
# local@domain.tld in any script (RFC 6531: "иван@пример.рф", "用户@例子.广告"), a quoted local part ("john doe"@...)
# and a punycode top-level domain (".xn--p1ai"), or an IP address literal for a domain (RFC 5321: "user@[192.0.2.1]",
# "user@[IPv6:2001:db8::1]")
_EMAIL = re.compile(rf"(?:(?<![\w{_MARKS}.%+-]){_LETTER}[\w{_MARKS}.%+-]{{0,63}}|(?<![\w\"])\"[^\"\r\n]{{1,64}}\")"
                    rf"@(?:{_LABEL}(?:\.{_LABEL})*\.(?:xn--[A-Za-z0-9-]{{1,59}}|(?:[^\W\d_]|[{_MARKS}]){{2,24}})"
                    rf"(?![\w{_MARKS}])|\[(?:\d{{1,3}}(?:\.\d{{1,3}}){{3}}|IPv6:[0-9A-Fa-f:.]{{2,45}})\])")
# in capitals as printed ("DE89 3704 ..."), or in small letters as typed ("de89370400440532013000")
_IBAN = re.compile(_B + r"([A-Za-z]{2}\d{2}(?:[ ]?[A-Za-z0-9]){11,30})" + _E)
# the countries of the IBAN registry (ISO 13616) and those that use IBANs outside it: an IBAN in small letters must
# start with one, as "ab12 ..." in lower-case prose passes the mod-97 check once in 97 tries
_IBAN_COUNTRIES = frozenset(
    "AD AE AL AO AT AZ BA BE BF BG BH BI BJ BR BY CF CG CH CI CM CR CV CY CZ DE DJ DK DO DZ EE EG ES FI FK FO FR GA GB "
    "GE GI GL GQ GR GT GW HN HR HU IE IL IQ IR IS IT JO KM KW KZ LB LC LI LT LU LV LY MA MC MD ME MG MK ML MN MR MT MU "
    "MZ NE NI NL NO OM PK PL PS PT QA RO RS RU SA SC SD SE SI SK SM SN SO ST SV TD TG TL TN TR UA VA VG XK YE".split())
_CARD = re.compile(_B + r"(\d(?:[ -]?\d){12,18})" + _E)
_SSN = re.compile(_B + r"(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}" + _E)
_NINO = re.compile(r"\b(?![DFIQUV])[A-CEGHJ-PR-TW-Z](?![DFIQUVO])[A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b")
# "+44 20 7946 0958", or as Europe dials abroad, "0044 20 7946 0958"
_PHONE_INTL = re.compile(r"(?<![\w+])(?:\+|00(?=[1-9]))\d[\d ().-]{6,22}\d" + _E)
_PHONE_NANP = re.compile(_B + r"(?:\(\d{3}\)[ ]?|\d{3}([-. ]))\d{3}(?(1)\1|[-. ])\d{4}" + _E)
# not after a group of digits: "8 045 311 447" is a number with its thousands spaced, not "8" and a phone number
_PHONE_NATIONAL = re.compile(_B + r"(?<!\d[ .-])0[1-9]\d{0,3}(?:[ .-]\d{2,4}){2,4}" + _E)
# A word-like tail starts where a word starts (the lookbehind): tried from every character of a long run without a
# space, each try read the run to its end (40,000 characters: 54 s). The matches are the same.
_TRUNCATED = re.compile(r"((?<!\d)(?<!\d[ ().-])\+?\d(?:[ ().-]?\d){5,}[ ().-]?|(?<!\S)\S+)(…|\.\.\.)$")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _iban_ok(text: str) -> bool:
    s = text.replace(" ", "")
    if not 15 <= len(s) <= 34:
        return False
    if not s.isupper() and not (s.islower() and s[:2].upper() in _IBAN_COUNTRIES):  # one case; small: a country's
        return False
    s = s.upper()
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _card_ok(text: str) -> bool:
    digits = re.sub(r"\D", "", text)
    # one separator style, or none: "4111 1111 1111 1111", "4111-1111-1111-1111", "4111111111111111"
    if len(set(re.findall(r"[ -]", text))) > 1 or not 13 <= len(digits) <= 19 or len(set(digits)) == 1:
        return False
    return _luhn(digits)


def _longest_valid(text: str, ok: Callable[[str], bool], placeholder: str) -> str:
    """Redact the longest prefix of ``text`` ending at a group boundary that passes ``ok`` (a greedy match may have
    swallowed the next group of digits or letters); ``text`` unchanged when none does."""
    ends = [i for i in range(len(text), 0, -1) if i == len(text) or text[i] in " -"]
    for end in ends:
        if ok(text[:end]):
            return placeholder + text[end:]
    return text


def _phone(lo: int, hi: int) -> Callable[[re.Match], str]:
    def sub(m: re.Match) -> str:
        text = m.group(0)
        n = sum(c.isdigit() for c in text)
        if text.startswith("00"):  # the international prefix, not a digit of the number; and grouped, unlike an id
            n -= 2
            if not re.search(r"[ ().-]", text):
                return text
        if not lo <= n <= hi or text.count("(") != text.count(")"):
            return text
        if re.search(r"(?<!\d)\d{4}-\d{2}-\d{2}(?!\d)|\d{1,2}:\d{2}", text):  # a date or a time, not a number to call
            return text
        return "[phone]"

    return sub


# (pattern, replacement, words of which the lower-cased text must hold one for the pattern to be tried: each is a
# substring search, far faster than a pattern tried at every character of a text that cannot match it)
_RULES: list[tuple[re.Pattern, Any, tuple[str, ...]]] = [
    (_KEYS, "[api_key]", ()),
    (_URL_PASSWORD, lambda m: m.group(1) + ":[api_key]@", ("://",)),
    (_ASSIGNED, _assigned, ("bearer", "authorization", "key", "token", "secret", "pass", "pwd")),
    (_EMAIL, "[email]", ("@",)),
    (_IBAN, lambda m: _longest_valid(m.group(0), _iban_ok, "[iban]"), ()),
    (_CARD, lambda m: _longest_valid(m.group(0), _card_ok, "[card]"), ()),
    (_SSN, "[national_id]", ()),
    (_NINO, "[national_id]", ()),
    (_PHONE_INTL, _phone(8, 15), ()),
    (_PHONE_NANP, "[phone]", ()),
    (_PHONE_NATIONAL, _phone(9, 11), ()),
]


def _truncated_tail(m: re.Match) -> str:
    token, mark = m.group(1), m.group(2)
    if token.startswith("[") or not (
        "@" in token
        or _KEY_PREFIX.match(token)
        or sum(c.isdigit() for c in token) >= 6
        or re.match(r"[\"'(]?[A-Z]{2}\d{2}[A-Z0-9]{4,}", token)
    ):
        return m.group(0)
    return "[redacted]" + mark


def redact(text: Any) -> Any:
    """``text`` with e-mail addresses, phone numbers, API keys, card numbers, IBANs and national ids replaced by
    ``[email]``, ``[phone]``, ``[api_key]``, ``[card]``, ``[iban]``, ``[national_id]``; other values unchanged.

    Parameters
    ----------
    text : str or any
        A value that is not a string (None, a number) is returned as it is.

    Returns
    -------
    str or the value unchanged

    Examples
    --------
    >>> redact("Reach me at bob@corp.example.org, (555) 123-4567.")
    'Reach me at [email], [phone].'
    >>> redact("The key is sk-ant-api03-AAAAAAAAAAAAAAAAAAAAAAAA; sk-learn is a library.")
    'The key is [api_key]; sk-learn is a library.'
    >>> redact("Contact alice.smith@exam…")
    'Contact [redacted]…'
    >>> redact(None) is None
    True
    """
    if not isinstance(text, str) or not text:
        return text
    low = text.lower()
    for pattern, repl, words in _RULES:
        if not words or any(w in low for w in words):
            text = pattern.sub(repl, text)
    if not text.rstrip("\n").endswith(("…", "...")):  # no text cut short ($ matches before a final line break too)
        return text
    return _TRUNCATED.sub(_truncated_tail, text)


def redact_frame(df: "pl.DataFrame", columns: Iterable[str] | None = None) -> "pl.DataFrame":
    """The frame with :func:`redact` applied to every text column (or to ``columns``), also to the text inside list,
    array and struct columns and to categories (a ``Categorical`` stays one; an ``Enum``, which cannot hold the
    redacted values, becomes a string column); other columns unchanged.

    >>> import polars as pl
    >>> redact_frame(pl.DataFrame({"answer": ["mail x@y.io", None], "n": [1, 2]})).rows()
    [('mail [email]', 1), (None, 2)]
    >>> redact_frame(pl.DataFrame({"contexts": [["call +44 20 7946 0958", "ok"]], "meta": [{"to": "x@y.io", "n": 1}]})).rows()
    [(['call [phone]', 'ok'], {'to': '[email]', 'n': 1})]
    """
    import polars as pl

    names = list(columns) if columns is not None else [c for c, t in df.schema.items() if _holds_text(t)]
    if not names:
        return df
    # categories are text too: redacted as strings, then categories again; an Enum cannot hold the redacted values,
    # so it comes back as text
    kept = {c: pl.Categorical for c in names if df.schema[c] == pl.Categorical}
    df = df.with_columns(pl.col(c).cast(pl.String) for c in names if isinstance(df.schema[c], (pl.Categorical, pl.Enum)))
    return df.with_columns(
        pl.col(c).map_batches(lambda s: pl.Series(s.name, [_redact_value(v) for v in s.to_list()], dtype=s.dtype))
        for c in names
    ).cast(kept)


def _holds_text(dtype: Any) -> bool:
    """Whether a column of ``dtype`` holds text: a string, categories, or a list, array or struct with a string
    inside."""
    import polars as pl

    if dtype == pl.String or isinstance(dtype, (pl.Categorical, pl.Enum)):
        return True
    if isinstance(dtype, (pl.List, pl.Array)):
        return _holds_text(dtype.inner)
    if isinstance(dtype, pl.Struct):
        return any(_holds_text(f.dtype) for f in dtype.fields)
    return False


def _redact_value(v: Any) -> Any:
    """:func:`redact` of a cell's Python value: a string, and the strings in its lists and struct fields."""
    if isinstance(v, list):
        return [_redact_value(x) for x in v]
    if isinstance(v, dict):
        return {k: _redact_value(x) for k, x in v.items()}
    return redact(v)


def show_raw_text(config: Any = None) -> bool:
    """``[privacy] show_raw_text`` of ``workbench.toml``: True only where a team has allowed raw text in reports.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "workbench.toml"
    >>> _ = p.write_text("[privacy]\\nshow_raw_text = true\\n")
    >>> show_raw_text(p)
    True
    """
    from workbench.config import ConfigError, load_config

    cfg = load_config(config)
    section = cfg.section("privacy")
    unknown = sorted(set(section) - {"show_raw_text"})
    if unknown:
        raise ConfigError(f"{cfg.where('privacy')}: unknown key {unknown[0]!r}; known keys: show_raw_text")
    value = section.get("show_raw_text", False)
    if not isinstance(value, bool):
        raise ConfigError(f"{cfg.where('privacy')}: show_raw_text must be true or false, got {value!r}")
    return value
