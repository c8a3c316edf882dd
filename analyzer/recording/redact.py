"""Remove secrets from what a capture writes: headers, URL query, subprotocols, event bodies."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "[REDACTED]"

SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "api-key",
        "x-api-key",
        "openai-api-key",
        "cookie",
        "set-cookie",
        "x-goog-api-key",
    }
)
SECRET_QUERY_PARAMS = frozenset(
    {
        "api-key",
        "api_key",
        "apikey",
        "authorization",
        "key",
        "token",
        "access_token",
        "client_secret",
    }
)
_SUBPROTOCOL_SECRET_PREFIXES = ("openai-insecure-api-key.", "openai-insecure-client-secret.")

# OpenAI keys (sk-...), ephemeral client secrets (ek_...), and any value under a key that names a
# secret. Base64 audio never contains '-' or '_', so these cannot match inside samples.
_TOKEN_RE = re.compile(r"\b(?:sk-[A-Za-z0-9_\-]{8,}|ek_[A-Za-z0-9_\-]{8,})")
_SECRET_VALUE_RE = re.compile(
    r'("(?:client_secret|api_key|apiKey|api-key|authorization|Authorization|secret|password)"\s*:\s*)'
    r'"(?:[^"\\]|\\.)*"'
)
_NESTED_SECRET_RE = re.compile(r'("client_secret"\s*:\s*\{[^{}]*?"value"\s*:\s*)"(?:[^"\\]|\\.)*"')
# What any secret the patterns above match contains. Looked for one by one with ``in``: twice as
# fast as a regex alternation on an event's ~200 characters (each frame is checked).
_HINTS = ("sk-", "ek_", "secret", "api_key", "apiKey", "api-key", "uthorization", "password")


def _has_hint(text: str) -> bool:
    for hint in _HINTS:  # noqa: SIM110 (a loop: any() over a generator is ~40% slower here)
        if hint in text:
            return True
    return False


def redact_text(text: str) -> str:
    """Replace secrets inside an event body; fast path when no hint of a secret is present."""
    if not _has_hint(text):
        return text
    text = _NESTED_SECRET_RE.sub(rf'\1"{REDACTED}"', text)
    text = _SECRET_VALUE_RE.sub(rf'\1"{REDACTED}"', text)
    return _TOKEN_RE.sub(REDACTED, text)


def redact_subprotocols(value: str) -> str:
    """``Sec-WebSocket-Protocol``: browsers pass the API key as a subprotocol name."""
    parts = [p.strip() for p in value.split(",")]
    out = []
    for part in parts:
        prefix = next((p for p in _SUBPROTOCOL_SECRET_PREFIXES if part.startswith(p)), None)
        out.append(prefix + REDACTED if prefix else redact_text(part))
    return ", ".join(out)


def redact_headers(headers: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Header pairs safe to write: secret headers keep their name, lose their value."""
    out: list[list[str]] = []
    for name, value in headers:
        lower = name.lower()
        if lower in SECRET_HEADERS:
            value = REDACTED
        elif lower == "sec-websocket-protocol":
            value = redact_subprotocols(value)
        else:
            value = redact_text(value)
        out.append([name, value])
    return out


def redact_url(url: str) -> str:
    """The URL with secret query parameters' values replaced and any userinfo removed."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [
                (k, REDACTED if k.lower() in SECRET_QUERY_PARAMS else redact_text(v))
                for k, v in pairs
            ]
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
