"""Generate the peer's speech assets. Run once; the WAVs and manifest are committed.

Needs espeak-ng and sox (``apt-get install -y espeak-ng sox``)::

    python -m analyzer.peer.make_assets

Every asset is 24 kHz mono 16-bit PCM, trimmed so its first and last 20 ms frames are clearly
voiced (the server VAD then sees exactly the asset's length), with pauses between words
shortened below the default 200 ms silence so one utterance is one VAD segment.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

from analyzer.peer.vad import FRAME_SAMPLES, SAMPLE_RATE_HZ, frame_rms, rms_threshold

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
USER_VOICE = "en-us+m3"
ASSISTANT_VOICE = "en-us+f3"
MAX_PAUSE_FRAMES = 5  # 100 ms: well under the 200 ms silence that ends a turn

# name -> (role, text). User utterances must differ in length: the server tells them apart by it.
SCRIPT: dict[str, tuple[str, str]] = {
    "user_story": ("user", "Tell me a bedtime story."),
    "user_weather": ("user", "What's the weather like in Paris today?"),
    "user_shorter": ("user", "Wait, make it shorter please."),
    "user_thanks": ("user", "Thanks, that's all."),
    "reply_story": (
        "assistant",
        "Once upon a time, a little bear lived in a quiet forest, "
        "and every night he counted the stars before he fell asleep.",
    ),
    "reply_short_story": ("assistant", "A little bear found a honey tree, and slept happily."),
    "reply_weather": ("assistant", "It is sunny and 22 degrees in Paris."),
    "reply_thanks": ("assistant", "You're welcome. Good night!"),
    "reply_sorry": ("assistant", "Sorry, I did not catch that."),
}


def synthesize(text: str, voice: str, workdir: Path) -> np.ndarray:
    raw, converted = workdir / "raw.wav", workdir / "out.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", "165", "-w", str(raw), text], check=True)
    subprocess.run(
        ["sox", str(raw), "-r", str(SAMPLE_RATE_HZ), "-c", "1", "-b", "16", str(converted)],
        check=True,
    )
    with wave.open(str(converted), "rb") as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").copy()


def tidy(samples: np.ndarray) -> np.ndarray:
    """Cut to whole frames, trim to clearly voiced edges, shorten long inner pauses."""
    count = samples.size // FRAME_SAMPLES
    frames = samples[: count * FRAME_SAMPLES].reshape(count, FRAME_SAMPLES)
    rms = frame_rms(samples)
    voiced = rms > rms_threshold(0.5)
    strong = np.nonzero(rms > 4 * rms_threshold(0.5))[0]
    kept: list[np.ndarray] = []
    silent_run = 0
    for index in range(int(strong[0]), int(strong[-1]) + 1):
        silent_run = 0 if voiced[index] else silent_run + 1
        if silent_run <= MAX_PAUSE_FRAMES:
            kept.append(frames[index])
    return np.concatenate(kept)


def write_wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE_HZ)
        wav.writeframes(samples.astype("<i2").tobytes())


def main() -> int:
    ASSETS_DIR.mkdir(exist_ok=True)
    manifest: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (role, text) in SCRIPT.items():
            voice = USER_VOICE if role == "user" else ASSISTANT_VOICE
            samples = tidy(synthesize(text, voice, Path(tmp)))
            write_wav(ASSETS_DIR / f"{name}.wav", samples)
            duration_ms = samples.size * 1000 // SAMPLE_RATE_HZ
            manifest[name] = {"role": role, "text": text, "duration_ms": duration_ms}
            print(f"{name}: {duration_ms} ms  {text}")
    (ASSETS_DIR / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
