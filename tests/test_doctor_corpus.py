"""Real console logs from public issue threads: the first finding names the fix the thread confirmed.

tests/fixtures/logs/corpus/index.toml lists each log with its source URL, the confirmed fix and the
knowledge-base entry that names it. A log the doctor gets wrong is a knowledge-base bug: widen a
pattern, add an entry, or fix the ranking, never the expectation.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sdsetup.doctor.corpus import CLEAN_DIR, CORPUS_DIR, diagnose_file, load_corpus
from sdsetup.doctor.kb import load_kb

KB = load_kb()
CORPUS = load_corpus()


def test_the_corpus_is_big_and_varied_enough():
    assert len(CORPUS) >= 50
    assert {c.platform for c in CORPUS} >= {"windows", "linux"}
    assert {"en", "zh"} <= {c.lang for c in CORPUS}
    assert {"a1111", "forge", "sdnext"} <= {c.webui for c in CORPUS}
    assert all(c.url.startswith("https://github.com/") for c in CORPUS)
    files = {p.name for p in CORPUS_DIR.glob("*.log")}
    assert files == {c.file for c in CORPUS}, "every log has an index entry and every entry a log"


@pytest.mark.parametrize("case", CORPUS, ids=[c.file for c in CORPUS])
def test_the_first_finding_names_the_confirmed_fix(case):
    assert case.expect in KB.ids, f"{case.file}: unknown id {case.expect}"
    found = diagnose_file(KB, CORPUS_DIR / case.file)
    assert found, f"{case.file} ({case.url}): no finding"
    assert found[0] == case.expect, f"{case.file} ({case.url}): ranked {found}"


@pytest.mark.parametrize("path", sorted(CLEAN_DIR.glob("*.log")), ids=lambda p: p.name)
def test_a_clean_startup_log_from_a_thread_gives_no_finding(path):
    assert diagnose_file(KB, path) == []
