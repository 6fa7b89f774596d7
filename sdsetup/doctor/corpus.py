"""The real-log corpus (tests/fixtures/logs/corpus): loading it and scoring the doctor against it.

Used by tests/test_doctor_corpus.py and bench/doctor. Each log carries its source thread and the
knowledge-base id naming the fix that thread confirmed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sdsetup.doctor.kb import KnowledgeBase

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "logs"
CORPUS_DIR = FIXTURES / "corpus"
CLEAN_DIR = FIXTURES / "clean"


@dataclass(frozen=True)
class CorpusLog:
    file: str
    url: str
    platform: str
    lang: str
    webui: str
    expect: str
    fix: str


def load_corpus(index: Path | None = None) -> list[CorpusLog]:
    from sdsetup.tomlcompat import load_toml

    data = load_toml(index or CORPUS_DIR / "index.toml", "log corpus index")
    return [CorpusLog(**{k: entry[k] for k in CorpusLog.__dataclass_fields__}) for entry in data["log"]]


def diagnose_file(kb: KnowledgeBase, path: Path, limit: int = 5) -> list[str]:
    """Finding ids for one log file, best first (what `sdsetup doctor --log FILE` would rank)."""
    from sdsetup.doctor.logread import ReadStats, iter_lines
    from sdsetup.doctor.match import Scanner, rank

    with open(path, "rb") as handle:
        scan = Scanner(kb, path.name).feed_all(iter_lines(handle, ReadStats())).finish()
    found, _ = rank(kb, [scan], limit=limit)
    return [r.entry.id for r in found]


@dataclass(frozen=True)
class Score:
    logs: int
    top1: int
    top3: int
    clean_logs: int
    false_positives: int  # clean logs with any finding
    misses: tuple[tuple[str, str, tuple[str, ...]], ...]  # (file, expected, found)


def score(kb: KnowledgeBase, corpus: list[CorpusLog], clean: list[Path]) -> Score:
    top1 = top3 = 0
    misses = []
    for case in corpus:
        found = diagnose_file(kb, CORPUS_DIR / case.file)
        top1 += bool(found[:1] == [case.expect])
        top3 += case.expect in found[:3]
        if found[:1] != [case.expect]:
            misses.append((case.file, case.expect, tuple(found)))
    fps = sum(1 for path in clean if diagnose_file(kb, path))
    return Score(len(corpus), top1, top3, len(clean), fps, tuple(misses))
