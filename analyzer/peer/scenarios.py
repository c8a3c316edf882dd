"""Scripted conversations the peer client plays."""

from __future__ import annotations

from dataclasses import dataclass

from analyzer.peer.dialect import ALAW, PCM16, ULAW


@dataclass(frozen=True)
class Turn:
    utterance: str  # a user asset name (``user_story``...)
    # Interrupt the reply after this many of its audio (or text) deltas: with VAD by starting the
    # next turn (barge-in), without VAD by sending response.cancel.
    interrupt_after_deltas: int | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    turns: tuple[Turn, ...]
    vad: bool = True  # server VAD; False: input_audio_buffer.commit + response.create
    audio_format: str = PCM16  # both directions, beta names (pcm16, g711_ulaw, g711_alaw)
    output_modalities: tuple[str, ...] = ("audio",)
    transcription: bool = True
    tools: bool = True  # offer get_weather, so the weather question becomes a function call
    silence_duration_ms: int = 200  # VAD silence that ends a turn (the seed's value)
    trailing_silence_ms: int = 600  # silence the client sends after each utterance
    kind: str = "realtime"  # "transcription": ?intent=transcription, speech-to-text only
    transcriber: str | None = None  # the transcription model (default: the dialect's usual)
    logprobs: bool = False  # ask for the transcription's log probabilities
    # Planted microphone faults (issue 18): a gain on the user's speech (samples beyond full
    # scale clip), and the reply's audio heard back by the microphone: mixed into what the
    # client sends at this gain, echo_delay_ms after it arrived, while the reply plays.
    mic_gain: float = 1.0
    echo_gain: float = 0.0
    echo_delay_ms: int = 150


DEFAULT_TURNS = (
    Turn("user_story", interrupt_after_deltas=3),
    Turn("user_shorter"),
    Turn("user_weather"),
    Turn("user_thanks"),
)

# Speech-to-text only: the user speaks, nothing answers.
TRANSCRIPTION_TURNS = (Turn("user_story"), Turn("user_weather"), Turn("user_thanks"))

# Two plain turns (no barge-in, no tool): the base of the planted-fault sessions.
PLAIN_TURNS = (Turn("user_shorter"), Turn("user_thanks"))

SCENARIOS: dict[str, Scenario] = {
    "plain": Scenario("plain", PLAIN_TURNS, tools=False),
    # The microphone hears the loudspeaker (no echo cancellation); without server VAD, so the
    # echo does not take turns (the client clears its input before speaking).
    "echo": Scenario("echo", PLAIN_TURNS, vad=False, tools=False, echo_gain=0.3),
    "clipping": Scenario("clipping", PLAIN_TURNS, tools=False, mic_gain=8.0),
    "default": Scenario("default", DEFAULT_TURNS),
    "manual": Scenario("manual", DEFAULT_TURNS, vad=False),
    "g711": Scenario("g711", DEFAULT_TURNS, audio_format=ULAW),
    "g711_alaw": Scenario("g711_alaw", DEFAULT_TURNS, audio_format=ALAW),
    "text": Scenario(
        "text", (Turn("user_weather"), Turn("user_thanks")), output_modalities=("text",)
    ),
    "transcription": Scenario(
        "transcription",
        TRANSCRIPTION_TURNS,
        kind="transcription",
        transcriber="gpt-4o-transcribe",
        logprobs=True,
    ),
    "transcription_manual": Scenario(
        "transcription_manual",
        TRANSCRIPTION_TURNS,
        vad=False,
        kind="transcription",
        transcriber="gpt-4o-mini-transcribe",
    ),
}

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {
            "location": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["location"],
    },
}
WEATHER_RESULT = '{"temperature_c":22,"condition":"sunny"}'


def scenario_named(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ValueError(
            f"unknown scenario {name!r}; choose one of {', '.join(SCENARIOS)}"
        ) from None
