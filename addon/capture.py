"""``mitmdump -s addon/capture.py`` from a checkout: the addon itself is
:mod:`analyzer.recording.addon` (``rt-analyze record`` runs it from an installed package)."""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import analyzer  # noqa: F401
except ImportError:  # run from a checkout without `pip install`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analyzer.recording.addon import RealtimeCapture, make_addons

__all__ = ["RealtimeCapture", "addons"]

# Fresh instances each time mitmdump (re)loads this file, as when the class lived here.
addons = make_addons()
