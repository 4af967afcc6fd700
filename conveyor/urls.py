"""URL lists and password masking, for every URL form conveyor accepts (stdlib only).

One masking function serves the CLI banners, ``conveyor doctor``, ``repr``s and every error
message that names a database or a broker, because each hand-written variant missed a form: the
second entry of a failover list, a ``?password=`` query parameter, a libpq multi-host authority.

Masking works on the text, not on a parsed URL. Parsers disagree on malformed URLs (SQLAlchemy
reads ``u:pa/ss@h`` as the password ``pa/ss``, urllib as the port ``pa``) and some forms do not
parse at all (``h1:5433,h2:5434``), yet their passwords must be hidden all the same: the
userinfo ends at the furthest ``@`` that either reading accepts, so a password is hidden
whenever any driver could take it for one. Over-masking an odd URL is the price.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

#: What replaces a password.
MASK = "***"

_SCHEME = re.compile(r"\s*[A-Za-z][A-Za-z0-9+.\-]*://")
#: SQLAlchemy's reading of the userinfo: the password runs to the first ``@`` after ``user:``.
_SQLALCHEMY_USERINFO = re.compile(r"[^:/]*:[^@]*@")
#: A URL without a scheme that still starts with ``user:password@`` (a typo'd URL).
_BARE_USERINFO = re.compile(r"[^:/@\s=]*:[^@\s]*@")
#: Query parameters that carry a secret (libpq's ``password`` and ``sslpassword``, and kin).
_QUERY_SECRET = re.compile(
    r"(?i)(?<=[?&;])((?:ssl)?password|passwd|pwd)=([^&#;]*)",
)
#: ``password=…`` in a libpq keyword/value connection string (``host=h password=x``).
_KEYWORD_SECRET = re.compile(r"(?i)\b((?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")


def split_url_list(url: str) -> list[str]:
    """The entries of a ``;``-separated failover list (``amqp://a;amqp://b``), blanks dropped.

    A piece without ``://`` belongs to the entry before it (a ``;`` inside a password or a
    query string), so it is never mistaken for an entry of its own.
    """
    entries = (entry.strip().rstrip("; \t") for entry in _pieces(url))
    return [entry for entry in entries if entry]


def mask_url(url: str) -> str:
    """The URL (or ``;``-separated list of URLs) with every password replaced by ``***``.

    Hides the password of each entry's userinfo (``scheme://user:***@host``, libpq multi-host
    authorities included), ``password=``/``sslpassword=`` query parameters and libpq
    keyword/value strings (``host=h password=***``). Everything else is kept as given, so
    SQLite paths, ``memory://`` and ``none://`` come back unchanged.
    """
    return _mask(url)[0]


def url_secrets(url: str) -> list[str]:
    """The passwords that :func:`mask_url` hides, as written and percent-decoded."""
    return _mask(url)[1]


def redact(text: str, *urls: str) -> str:
    """``text`` with the passwords of ``urls`` masked wherever they appear.

    For error messages that embed a driver's own text next to a masked URL: a parser error
    such as "Port could not be cast to integer value as 'pa'" quotes part of a URL, and that
    part may be a password written with an unescaped ``/``. Secrets shorter than 3 characters
    are left alone, which would otherwise mangle every message they occur in by chance.
    """
    secrets = {secret for url in urls for secret in url_secrets(url)}
    # A parser may have cut the password at a '/', '?' or '#' (urllib reads "u:pa/ss@h" as
    # the port "pa"), so the pieces of such a password are secrets too.
    secrets |= {part for secret in secrets for part in re.split(r"[/?#]", secret)}
    for secret in sorted((s for s in secrets if len(s) >= 3), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def _mask(url: str) -> tuple[str, list[str]]:
    secrets: list[str] = []
    masked = ";".join(_mask_entry(piece, secrets) for piece in _pieces(url))
    found: list[str] = []
    for secret in secrets:
        for form in (secret, unquote(secret)):
            if form and form not in found:
                found.append(form)
    return masked, found


def _pieces(url: str) -> list[str]:
    """The ``;``-separated pieces, each continuation (no ``://``) joined to the piece before
    it; blanks and whitespace are kept, so masking changes nothing but the passwords."""
    pieces: list[str] = []
    for piece in url.split(";"):
        if pieces and "://" not in piece:
            pieces[-1] += ";" + piece
        else:
            pieces.append(piece)
    return pieces


def _mask_entry(entry: str, secrets: list[str]) -> str:
    scheme = _SCHEME.match(entry)
    if scheme is None:
        bare = _BARE_USERINFO.match(entry)
        head = ""
        rest = entry
        if bare is None:
            return _mask_keywords(_mask_query(entry, secrets), secrets)
    else:
        head, rest = entry[: scheme.end()], entry[scheme.end() :]
    at = _userinfo_end(rest)
    if at >= 0:
        userinfo = rest[:at]
        if ":" in userinfo:
            user, password = userinfo.split(":", 1)
            secrets.append(password)
            rest = f"{user}:{MASK}{rest[at:]}"
    return head + _mask_query(rest, secrets)


def _userinfo_end(rest: str) -> int:
    """Index of the ``@`` that ends the userinfo of ``rest`` (the text after ``://``), or -1.

    urllib's reading (the authority ends at the first ``/``, ``?`` or ``#``; the userinfo at its
    last ``@``) or SQLAlchemy's, whichever reaches further.
    """
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    ends = [authority.rfind("@")]
    sqlalchemy = _SQLALCHEMY_USERINFO.match(rest)
    if sqlalchemy is not None:
        ends.append(sqlalchemy.end() - 1)
    return max(ends)


def _mask_query(text: str, secrets: list[str]) -> str:
    def hide(match: re.Match[str]) -> str:
        secrets.append(match.group(2))
        return f"{match.group(1)}={MASK}"

    return _QUERY_SECRET.sub(hide, text)


def _mask_keywords(text: str, secrets: list[str]) -> str:
    def hide(match: re.Match[str]) -> str:
        value = match.group(2)
        secrets.append(value[1:-1] if value.startswith("'") else value)
        return f"{match.group(1)}{MASK}"

    return _KEYWORD_SECRET.sub(hide, text)
