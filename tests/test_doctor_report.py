"""The doctor's report for people: fix text can be copied as printed."""

from __future__ import annotations

import re

import pytest

from sdsetup.doctor.kb import load_kb
from sdsetup.doctor.report import WIDTH, finding_json, render

KB = load_kb()


def _finding(entry):
    return {"id": entry.id, "title": entry.title, "severity": entry.severity, "explanation": entry.explanation,
            "fix": entry.fix.to_json(), "evidence": ["x"], "source": "log", "line": 1, "occurrences": 1, "autofix": None}


def _copyables(entry) -> list[str]:
    """What a user copies from a step: `backticked commands`, --flags, URLs."""
    found = []
    for step in entry.fix.steps:
        found += re.findall(r"`([^`]+)`", step)
        found += re.findall(r"(?<![\w`])--[a-z][\w-]+", step)
        found += re.findall(r"https?://\S+", step)
    return found


@pytest.mark.parametrize("entry", [e for e in KB.entries if _copyables(e)], ids=lambda e: e.id)
def test_commands_flags_and_urls_in_fix_steps_are_never_split_across_lines(entry):
    text = render({"sources": [], "findings": [_finding(entry)], "summary": "s"})
    lines = text.splitlines()
    for piece in _copyables(entry):
        assert any(piece in line for line in lines), f"{piece!r} is split across lines:\n{text}"


def test_a_long_command_step_still_wraps_between_words():
    step = "Run " + " ".join(["word"] * 40) + " then `sdsetup install DIR --mirror cn --proxy http://127.0.0.1:7890` and relaunch."
    finding = {"id": "x", "title": "t", "severity": "error", "explanation": "e", "fix": {"steps": [step], "commands": {}},
               "evidence": [], "source": "log", "line": 1, "occurrences": 1, "autofix": None}
    lines = render({"sources": [], "findings": [finding], "summary": "s"}).splitlines()
    assert any("`sdsetup install DIR --mirror cn --proxy http://127.0.0.1:7890`" in line for line in lines)
    assert all(len(line) <= WIDTH + 60 for line in lines)


def test_a_finding_in_chinese_has_the_same_keys_and_commands():
    from sdsetup.doctor.match import rank, scan_lines

    scan = scan_lines(KB, ["torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB"], "x")
    [found], _ = rank(KB, [scan])
    en, zh = (finding_json(found, str, lang) for lang in ("en", "zh-CN"))
    assert en.keys() == zh.keys() and en["id"] == zh["id"] == "cuda-oom"
    assert zh["title"] == "显存不足" and zh["fix"]["commands"] == en["fix"]["commands"]
    assert any("--medvram" in step for step in zh["fix"]["steps"])
