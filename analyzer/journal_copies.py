"""Big journals read through the Parquet file ``rt-analyze convert`` makes of them.

A journal is read whole (every frame's text, audio and facts in memory at once): a 1 GB journal
took 4.3 GB of peak RSS to report on. Converted first (streaming, ~0.2x its size) into a private
temporary directory, it is read in windows like any capture, the same answers in about the same
time. Small journals are still read whole: converting them would cost more than it saves.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from analyzer.recording.convert import JournalError, JournalFacts, convert_journal

# Journals up to this size are read whole (their peak is then ~4x this).
READ_WHOLE_MAX_BYTES = 256 * 1024 * 1024


def journal_warnings(path: Path, facts: JournalFacts) -> list[str]:
    """What a reader says of a journal's skipped lines."""
    warnings = []
    if facts.torn_last_line:
        warnings.append(f"{path.name}: skipped a torn last line (the recorder stopped mid-write).")
    if facts.bad_lines:
        lines = ", ".join(map(str, facts.bad_lines[:5]))
        warnings.append(f"{path.name}: skipped {len(facts.bad_lines)} unreadable line(s): {lines}.")
    return warnings


@dataclass
class JournalCopies:
    """The Parquet copies of a dataset's big journals, each converted once, in a temporary
    directory of the owner's only (0700), removed with this object."""

    made: dict[Path, Path] = field(default_factory=dict)
    _directory: Path | None = None

    def parquet_of(self, journal: Path, warn: Callable[[str], None]) -> Path | None:
        """The copy to read instead of ``journal``, or None to read the journal whole (small,
        or it could not be converted: the whole read then says why)."""
        if journal in self.made:
            return self.made[journal]
        try:
            if journal.stat().st_size <= READ_WHOLE_MAX_BYTES:
                return None
            out, facts = convert_journal(journal, self._place(journal))
        except (JournalError, OSError):
            return None
        for warning in journal_warnings(journal, facts):
            warn(warning)
        self.made[journal] = out
        return out

    def _place(self, journal: Path) -> Path:
        if self._directory is None:
            self._directory = Path(tempfile.mkdtemp(prefix="rt-analyze-journals-"))
            weakref.finalize(self, shutil.rmtree, self._directory, True)
        return self._directory / f"{len(self.made)}-{journal.stem}.parquet"
