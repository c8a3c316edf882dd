"""Token prices per model and the cost estimate of a session's usage.

The defaults are OpenAI's list prices in USD per 1M tokens as published on
https://openai.com/api/pricing and the model pages (checked 2025-10; gpt-4o-realtime-preview
snapshots from the 2024-10-01 and 2024-12-17 announcements). They are estimates: prices change,
and Azure and other providers bill differently. Input transcription is billed apart, at the
transcriber's prices (``transcription_cost`` in the report): gpt-4o-transcribe and
gpt-4o-mini-transcribe by tokens (text and audio), whisper-1 and gpt-realtime-whisper by the
minute of audio (``audio_minute``; model pages checked 2026). GPT-Live sessions are billed by
duration too (``audio_minute`` of the session's reported seconds), Gemini Live by tokens per
modality (see the entries' comments for their sources). Override or extend them with a
JSON file (``--prices prices.json``)::

    {"gpt-realtime": {"input_audio": 32, "output_audio": 64},
     "my-deployment": {"input_text": 4, "cached_input_text": 0.4, "output_text": 16,
                       "input_audio": 32, "cached_input_audio": 0.4, "output_audio": 64}}

A model is priced by the longest key its name starts with (``gpt-4o-realtime-preview-2025-06-03``
uses ``gpt-4o-realtime-preview``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any


class PricingError(ValueError):
    """A prices file cannot be used; the message is one sentence a user can act on."""


@dataclass(frozen=True, slots=True)
class Prices:
    """USD per 1M tokens."""

    input_text: float
    cached_input_text: float
    output_text: float
    input_audio: float
    cached_input_audio: float
    output_audio: float
    audio_minute: float = 0.0  # USD per minute of input audio (transcribers billed by duration)


PRICE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Prices))
# What a new model of a prices file must give (audio_minute is only for duration billing).
REQUIRED_PRICE_FIELDS: tuple[str, ...] = tuple(f for f in PRICE_FIELDS if f != "audio_minute")

DEFAULT_PRICES: dict[str, Prices] = {
    "gpt-realtime": Prices(4.00, 0.40, 16.00, 32.00, 0.40, 64.00),
    # Assumed from the gpt-realtime-mini model page (2025-10); verify before relying on it.
    "gpt-realtime-mini": Prices(0.60, 0.06, 2.40, 10.00, 0.30, 20.00),
    "gpt-4o-realtime-preview": Prices(5.00, 2.50, 20.00, 40.00, 2.50, 80.00),
    # The first snapshot's audio was priced higher until the 2024-12-17 price cut.
    "gpt-4o-realtime-preview-2024-10-01": Prices(5.00, 2.50, 20.00, 100.00, 20.00, 200.00),
    "gpt-4o-mini-realtime-preview": Prices(0.60, 0.30, 2.40, 10.00, 0.30, 20.00),
    "gpt-4o-mini-realtime": Prices(0.60, 0.30, 2.40, 10.00, 0.30, 20.00),
    # Transcribers (input transcription and transcription sessions). Text input is the prompt,
    # audio input the speech, output the transcript; no cached-input discount is published.
    "gpt-4o-transcribe": Prices(2.50, 2.50, 10.00, 6.00, 6.00, 0.0),
    "gpt-4o-mini-transcribe": Prices(1.25, 1.25, 5.00, 3.00, 3.00, 0.0),
    "whisper-1": Prices(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, audio_minute=0.006),
    "gpt-realtime-whisper": Prices(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, audio_minute=0.017),
    # GPT-Live voice sessions are billed by duration, per second at the active rate: $0.05 a
    # minute (developers.openai.com/api/docs/models/gpt-live-1.1, "same price as GPT-Live-1",
    # and the GPT-Live cost guide's example, api/docs/guides/voice-latency-cost; checked
    # 2026-12-04). Priced here from the session's cumulative ``session.usage.updated`` seconds.
    # Not covered: the WebRTC standby rate ($0.02 a minute; the capture does not tell standby
    # time apart) and the delegated Responses backend's tokens, billed at its own model's prices.
    "gpt-live-1": Prices(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, audio_minute=0.05),
    # Gemini Live (Gemini API, paid tier, USD per 1M tokens by modality; "audio" is Google's
    # audio/image/video rate). No cached-input price is published for the Live models: cached
    # tokens are priced as input. Sources, checked 2026-12-04 through the stored pages:
    # gemini-2.0-flash-live-001 $0.35 text / $2.10 audio in, $1.50 text / $8.50 audio out (a
    # Google staff answer on discuss.ai.google.dev/t/110407, as on ai.google.dev/pricing);
    # Gemini 2.5 Flash native audio (gemini-2.5-flash-native-audio-preview-09-2025/-12-2025)
    # $0.50 / $3.00 in, $2.00 / $12.00 out (ai.google.dev/pricing as quoted on a model profile
    # page verified 2026-05-16). gemini-live-2.5-flash-preview (half-cascade) and Vertex AI's
    # gemini-live-2.5-flash-* are ASSUMED to cost what 2.5 Flash native audio costs: no page
    # found gives their own price; verify before relying on it.
    "gemini-2.0-flash-live": Prices(0.35, 0.35, 1.50, 2.10, 2.10, 8.50),
    "gemini-2.5-flash-native-audio": Prices(0.50, 0.50, 2.00, 3.00, 3.00, 12.00),
    "gemini-2.5-flash-preview-native-audio": Prices(0.50, 0.50, 2.00, 3.00, 3.00, 12.00),
    "gemini-live-2.5-flash": Prices(0.50, 0.50, 2.00, 3.00, 3.00, 12.00),
}


def parse_prices(
    data: Any, source: str = "prices", base: Mapping[str, Prices] | None = None
) -> dict[str, Prices]:
    """``base`` (the defaults) updated with a ``{model: {field: usd_per_1m}}`` mapping. A model
    already in ``base`` may give only some fields; a new one must give all of them."""
    prices = dict(DEFAULT_PRICES if base is None else base)
    if not isinstance(data, dict):
        raise PricingError(
            f"{source} must be a JSON object of model name -> prices, e.g. "
            '{"gpt-realtime": {"input_audio": 32, "output_audio": 64}}.'
        )
    for model, entry in data.items():
        if not isinstance(entry, dict):
            raise PricingError(f"{source}: the prices of {model!r} must be an object.")
        unknown = sorted(set(entry) - set(PRICE_FIELDS))
        if unknown:
            raise PricingError(
                f"{source}: unknown price field(s) {', '.join(unknown)} for {model!r}; "
                f"use {', '.join(PRICE_FIELDS)} (USD per 1M tokens)."
            )
        for name, value in entry.items():
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or value < 0
                or not math.isfinite(value)
            ):
                raise PricingError(
                    f"{source}: {model!r} {name} must be a non-negative number (USD per 1M)."
                )
        values = {k: float(v) for k, v in entry.items()}
        if model in prices:
            prices[model] = replace(prices[model], **values)
        else:
            missing = [f for f in REQUIRED_PRICE_FIELDS if f not in values]
            if missing:
                raise PricingError(
                    f"{source}: {model!r} is a new model, so give all prices; missing "
                    f"{', '.join(missing)}."
                )
            prices[model] = Prices(**values)
    return prices


def load_prices(path: Path) -> dict[str, Prices]:
    """The default prices updated with those of a JSON file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise PricingError(f"prices file {path} does not exist.") from exc
    except OSError as exc:
        raise PricingError(f"cannot read prices file {path}: {exc.strerror}.") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise PricingError(f"prices file {path} is not valid JSON ({exc}).") from exc
    return parse_prices(data, str(path))


def prices_for(
    model: str | None, prices: Mapping[str, Prices] | None = None
) -> tuple[str, Prices] | None:
    """(price key, prices) for a model name: the longest key it starts with, or None."""
    if not model:
        return None
    table = DEFAULT_PRICES if prices is None else prices
    name = model.lower()
    matches = [key for key in table if name.startswith(key.lower())]
    if not matches and "/" in name:
        # Gemini names its models "models/gemini-..." (Vertex AI: "projects/.../models/...").
        name = name.rsplit("/", 1)[1]
        matches = [key for key in table if name.startswith(key.lower())]
    if not matches:
        return None
    key = max(matches, key=len)
    return key, table[key]


def _n(tokens: Mapping[Any, Any], name: str) -> float:
    value = tokens.get(name)
    if value is None or isinstance(value, bool):
        return 0.0
    value = float(value)
    return 0.0 if math.isnan(value) else value


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def transcription_cost_usd(usage: Mapping[str, Any], prices: Prices) -> float | None:
    """Estimated USD of one transcription's usage (keys as the report's
    ``transcription_usage``): by tokens (input audio and text, output text; an input not split
    is taken as audio) or by the minute of audio; None when the usage is of a kind these prices
    do not cover."""
    seconds = usage.get("audio_seconds")
    if seconds is not None and not _nan(seconds):
        return float(seconds) / 60.0 * prices.audio_minute if prices.audio_minute else None
    if usage.get("total_tokens") is None and usage.get("input_tokens") is None:
        return None
    if not (prices.input_audio or prices.output_text):
        return None  # billed by the minute, yet reported in tokens
    input_text = _n(usage, "input_text_tokens")
    input_audio = usage.get("input_audio_tokens")
    if input_audio is None or _nan(input_audio):
        input_audio = _n(usage, "input_tokens") - input_text
    usd = (
        input_text * prices.input_text
        + float(input_audio) * prices.input_audio
        + _n(usage, "output_tokens") * prices.output_text
    )
    return usd / 1_000_000
