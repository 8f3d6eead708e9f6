"""The one "did you mean ...?" helper that every message naming an unknown thing uses."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: object, options: Iterable[object], *, fold: bool = False) -> str:
    """`` (did you mean 'x'?)`` for the option closest to ``word``, or ``""`` when none is close.

    ``fold``: compare case-insensitively (ARM parameter names, say), suggesting the option as written.
    """
    written = [str(option) for option in options]
    if fold:
        folded = {option.casefold(): option for option in written}
        close = difflib.get_close_matches(str(word).casefold(), list(folded), n=1, cutoff=0.6)
        return f" (did you mean '{folded[close[0]]}'?)" if close else ""
    close = difflib.get_close_matches(str(word), written, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


__all__ = ["did_you_mean"]
