"""Match clean log lines against the knowledge base, then rank what was found.

Scanning streams: per entry it keeps one aggregate of its hits in the latest run, so memory does not
grow with the log. Ranking is a pure function of those aggregates:

1. the latest run of each log first (a log often holds several attempts; the last one is the state
   the user is in now), then errors over warnings;
2. a named cause over a generic wrapper ("Couldn't install torch" is shown only when nothing in its
   log explains it), the logs the user gave over sdsetup's own, then the most specific entry;
3. within one log, entries that another found entry `supersedes` are dropped; harmless lines (pip's
   upgrade notice) never become findings, whatever comes after them;
4. at most `limit` findings.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from sdsetup.doctor.kb import KnowledgeBase, KnownError

from sdsetup.doctor.literals import _literals, _sre_parse, pattern_literals  # noqa: F401 (pattern_literals: public here too)

MAX_EVIDENCE = 3
MAX_EVIDENCE_CHARS = 400
DEFAULT_LIMIT = 5
_SEVERITY_RANK = {"error": 2, "warning": 1, "harmless": 0}

# A new attempt starts where a launcher starts: webui.bat prints `venv "…python.exe"`, webui.sh its
# banner and "Launching launch.py...", launch.py itself the Python version (after an optional warning).
_RUN_START = re.compile(r'^(venv "|Creating venv in directory |Install script for stable-diffusion|Launching launch\.py)')
_RUN_START_WEAK = re.compile(r"^(Python 3\.\d+\.\d+|INCOMPATIBLE PYTHON VERSION)")
_WEAK_GAP = 30  # a weak marker this close after another marker belongs to the same start


@dataclass
class Hit:
    """One entry's hits in one source: those of the latest run that had any, plus a total."""

    entry_id: str
    run: int
    first_line: int
    last_line: int
    count: int = 1
    total: int = 1
    evidence: list[tuple[int, str]] = field(default_factory=list)

    def add(self, line_no: int, text: str) -> None:
        self.last_line = max(self.last_line, line_no)
        self.first_line = min(self.first_line, line_no)
        self.count += 1
        self.total += 1
        if len(self.evidence) < MAX_EVIDENCE and all(t != text for _, t in self.evidence):
            self.evidence.append((line_no, text))
            self.evidence.sort()


@dataclass
class SourceScan:
    """The result of scanning one source (a log file, stdin, or the text of install checks)."""

    source: str  # what to show: a path (home redacted), "stdin", "check", "verify", "repositories"
    kind: str  # log | run-log | install
    priority: int  # among equally good findings, which source wins (given logs first)
    lines: int = 0
    last_run: int = 0
    hits: dict[str, Hit] = field(default_factory=dict)
    stats: Any = None  # logread.ReadStats for files and stdin
    generic: list[Any] = field(default_factory=list)  # generic.Event: the latest run's exceptions and OS errors


class _Compiled:
    """The knowledge base as scanning needs it.

    Most lines of a big log match nothing, so each line is first tested for the literal text every
    pattern requires (derived from the regexes themselves, so entries need no extra keys); only
    lines that contain one are run through the entries' own patterns.
    """

    def __init__(self, kb: KnowledgeBase) -> None:
        self.entries = [(e, e.patterns, e.context) for e in kb.entries]
        literals: set[str] = set()
        leftovers: list[re.Pattern] = []
        for entry in kb.entries:
            for pattern in (*entry.patterns, *entry.context):
                found = None
                if not pattern.flags & re.IGNORECASE:  # `in` is case-sensitive
                    try:
                        found = _literals(_sre_parse.parse(pattern.pattern, pattern.flags))
                    except Exception:  # an exotic pattern: match it in full instead
                        found = None
                if found:
                    literals.update(found)
                else:
                    leftovers.append(pattern)
        self.literals = tuple(sorted(literals, key=len))
        self.rest = tuple(leftovers)  # patterns without a usable literal: searched in full
        # one regex over each literal's rarest part first (generic._anchor): most lines hold none
        from sdsetup.doctor.generic import _anchor

        self.anchors = re.compile("|".join(re.escape(a) for a in sorted({_anchor(lit) for lit in self.literals}))) \
            if self.literals else None

    def candidate(self, text: str) -> bool:
        if self.anchors is not None and self.anchors.search(text) and any(map(text.__contains__, self.literals)):
            return True
        return any(pattern.search(text) for pattern in self.rest)


_compiled_cache: dict[int, _Compiled] = {}


def _compiled(kb: KnowledgeBase) -> _Compiled:
    key = id(kb)
    if key not in _compiled_cache:
        _compiled_cache[key] = _Compiled(kb)
    return _compiled_cache[key]


class _ContextState:
    """Per entry and run: where its context last matched, and hits waiting for context after them."""

    __slots__ = ("last_context", "pending")

    def __init__(self) -> None:
        self.last_context: int | None = None
        self.pending: deque[tuple[int, str]] = deque(maxlen=16)


class Scanner:
    """Feed clean lines one at a time; `finish()` returns the SourceScan."""

    def __init__(self, kb: KnowledgeBase, source: str, *, kind: str = "log", priority: int = 0,
                 on_line: Callable[[int, str], None] | None = None) -> None:
        self.kb = kb
        self.compiled = _compiled(kb)
        self.scan = SourceScan(source=source, kind=kind, priority=priority)
        self.on_line = on_line
        self.line_no = 0
        self.run = 0
        self.last_marker = -(10**9)
        self.context: dict[str, _ContextState] = {}
        from sdsetup.doctor.generic import GenericTracker, load_table

        self.generic = GenericTracker(load_table())

    def feed(self, text: str) -> None:
        self.line_no += 1
        line_no = self.line_no
        if self.on_line is not None:
            self.on_line(line_no, text)
        if not text:
            return
        if _RUN_START.match(text) or (_RUN_START_WEAK.match(text) and line_no - self.last_marker > _WEAK_GAP):
            if line_no - self.last_marker > _WEAK_GAP:
                self._new_run()
            self.last_marker = line_no
        generic = self.generic
        if generic.in_traceback or generic.passes(text):  # most lines: no call into the tracker at all
            generic.feed(line_no, text)
        if not self.compiled.candidate(text):
            return
        for entry, patterns, context in self.compiled.entries:
            if context and any(c.search(text) for c in context):
                self._context_seen(entry, line_no)
            for pattern in patterns:
                if pattern.search(text):
                    self._candidate(entry, line_no, text)
                    break

    def feed_all(self, lines: Iterable[str]) -> "Scanner":
        for line in lines:
            self.feed(line)
        return self

    def finish(self) -> SourceScan:
        self.scan.lines = self.line_no
        self.scan.last_run = self.run
        self.scan.generic = [e for e in self.generic.finish() if e.run == self.run]
        return self.scan

    def _new_run(self) -> None:
        if self.line_no > 1:
            self.run += 1
            self.generic.new_run()
        self.context.clear()

    def _state(self, entry: KnownError) -> _ContextState:
        state = self.context.get(entry.id)
        if state is None:
            state = self.context[entry.id] = _ContextState()
        return state

    def _near(self, entry: KnownError, a: int, b: int) -> bool:
        return entry.context_lines is None or abs(a - b) <= entry.context_lines

    def _candidate(self, entry: KnownError, line_no: int, text: str) -> None:
        if not entry.context:
            self._accept(entry, line_no, text)
            return
        state = self._state(entry)
        if state.last_context is not None and self._near(entry, line_no, state.last_context):
            self._accept(entry, line_no, text)
        else:
            state.pending.append((line_no, text))

    def _context_seen(self, entry: KnownError, line_no: int) -> None:
        state = self._state(entry)
        state.last_context = line_no
        waiting = [(n, t) for n, t in state.pending if self._near(entry, n, line_no)]
        state.pending.clear()
        for n, t in waiting:
            self._accept(entry, n, t)

    def _accept(self, entry: KnownError, line_no: int, text: str) -> None:
        text = text.strip()[:MAX_EVIDENCE_CHARS]
        hit = self.scan.hits.get(entry.id)
        if hit is None or hit.run != self.run:
            total = hit.total + 1 if hit else 1
            self.scan.hits[entry.id] = Hit(entry.id, self.run, line_no, line_no, 1, total, [(line_no, text)])
        else:
            hit.add(line_no, text)


def scan_lines(kb: KnowledgeBase, lines: Iterable[str], source: str, **kwargs) -> SourceScan:
    return Scanner(kb, source, **kwargs).feed_all(lines).finish()


@dataclass
class Ranked:
    """A hit chosen for the report, with where it came from."""

    entry: KnownError
    hit: Hit
    scan: SourceScan
    occurrences: int

    @property
    def key(self) -> tuple:
        return (
            self.hit.run == self.scan.last_run,
            _SEVERITY_RANK[self.entry.severity],
            not self.entry.wrapper,
            self.scan.priority,
            self.entry.specificity,
            self.hit.last_line,
        ) if not self.entry.generic else (False, False, 0, 0, self.entry.specificity, self.scan.priority, self.hit.last_line)


def _explained(kb: KnowledgeBase, scan: SourceScan) -> set[str]:
    """Ids this source's own findings make redundant: superseded entries, and wrappers once a
    specific error explains them. Judged per source: an old log must not hide a new one's cause."""
    found = [kb.get(entry_id) for entry_id in scan.hits]
    drop = {other for entry in found for other in entry.supersedes}
    if any(e.severity == "error" and not e.wrapper for e in found if e.id not in drop):
        drop |= {e.id for e in found if e.wrapper}
    return drop


def rank(kb: KnowledgeBase, scans: Iterable[SourceScan], limit: int = DEFAULT_LIMIT) -> tuple[list[Ranked], list[Ranked]]:
    """(findings best first, harmless notes). Pure: depends only on the scans and the knowledge base."""
    best: dict[str, Ranked] = {}
    harmless: dict[str, Ranked] = {}
    totals: dict[str, int] = {}
    scans_seen = list(scans)
    for scan in scans_seen:
        drop = _explained(kb, scan)
        for entry_id, hit in scan.hits.items():
            entry = kb.get(entry_id)
            totals[entry_id] = totals.get(entry_id, 0) + hit.total
            if entry_id in drop:
                continue
            candidate = Ranked(entry, hit, scan, 0)
            table = harmless if entry.severity == "harmless" else best
            if entry_id not in table or candidate.key > table[entry_id].key:
                table[entry_id] = candidate
    for ranked in list(best.values()) + list(harmless.values()):
        ranked.occurrences = totals[ranked.entry.id]
    kept = sorted(best.values(), key=lambda r: r.key, reverse=True)
    kept += _generic(kb, scans_seen, limit)
    notes = sorted(harmless.values(), key=lambda r: (r.scan.priority, r.hit.last_line), reverse=True)
    return kept[:limit], notes


def _generic(kb: KnowledgeBase, scans: list[SourceScan], limit: int) -> list[Ranked]:
    """Generic findings (never silent), below every knowledge-base match: a source's final exception,
    pip/git/cmd errors and OS error codes, unless an entry already names an error of that source's
    latest run (the entry's fix is the better answer)."""
    from sdsetup.doctor.generic import entry_for, load_table

    table = None
    out: dict[str, Ranked] = {}
    for scan in sorted(scans, key=lambda s: s.priority, reverse=True):
        if not scan.generic:
            continue
        drop = _explained(kb, scan)
        if any(kb.get(i).severity == "error" and not kb.get(i).wrapper and h.run == scan.last_run
               for i, h in scan.hits.items() if i not in drop):
            continue
        table = table or load_table()
        # A line an entry already explains (a wrapper such as "Couldn't install torch.") is not said twice.
        seen = {n for h in scan.hits.values() for n in (h.first_line, h.last_line, *(line for line, _ in h.evidence))}
        for event in scan.generic:
            if event.line_no in seen:
                continue
            entry = entry_for(table, event)
            if entry.id in out:
                continue
            hit = Hit(entry.id, event.run, event.line_no, event.line_no, 1, event.count, [(event.line_no, event.text)])
            out[entry.id] = Ranked(entry, hit, scan, event.count)
    return sorted(out.values(), key=lambda r: r.key, reverse=True)[:limit]
