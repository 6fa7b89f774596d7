"""The literal text a regular expression needs: the cheap prefilter before a pattern is run on a line
(shared by the knowledge-base scanner and the generic findings, so neither imports the other)."""

from __future__ import annotations

import re

try:  # the regex parser, to find the literal text a pattern needs (Python 3.11+ / 3.10)
    import re._constants as _sre_constants
    import re._parser as _sre_parse
except ImportError:  # pragma: no cover
    import sre_constants as _sre_constants  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]

_LITERAL = _sre_constants.LITERAL
_BRANCH = _sre_constants.BRANCH


def _literals(parsed) -> list[str] | None:
    """Substrings one of which every match must contain (None when no such set is found)."""
    best, run = "", []
    for op, value in parsed:
        if op is _LITERAL:
            run.append(chr(value))
            continue
        best = max(best, "".join(run), key=len)
        run = []
        if op is _BRANCH and len(parsed) == 1:  # a top-level a|b|c: one literal per branch
            branches = [_literals(branch) for branch in value[1]]
            if all(branches):
                return [lit for branch in branches for lit in branch]
    best = max(best, "".join(run), key=len)
    return [best] if len(best) >= 4 else None


def pattern_literals(pattern: re.Pattern) -> list[str] | None:
    """Substrings one of which every match of `pattern` contains, or None (case-insensitive or exotic)."""
    if pattern.flags & re.IGNORECASE:
        return None
    try:
        return _literals(_sre_parse.parse(pattern.pattern, pattern.flags))
    except Exception:
        return None
