"""Matching and ranking on realistic console logs: the root cause comes first."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from sdsetup.doctor.kb import load_kb
from sdsetup.doctor.logread import ReadStats, iter_lines, read_text_lines
from sdsetup.doctor.match import Scanner, rank, scan_lines

FIXTURES = Path(__file__).parent / "fixtures" / "logs"
KB = load_kb()


def scan_file(path: Path, name: str | None = None, **kwargs):
    stats = ReadStats()
    with open(path, "rb") as handle:
        scan = Scanner(KB, name or path.name, **kwargs).feed_all(iter_lines(handle, stats)).finish()
    scan.stats = stats
    return scan


def ranked_ids(*scans) -> list[str]:
    found, _ = rank(KB, scans)
    return [r.entry.id for r in found]


@pytest.mark.parametrize("entry_id", KB.ids)
def test_each_known_error_is_recognised_in_its_fixture_log(entry_id):
    fixture = FIXTURES / f"{entry_id}.log"
    assert fixture.is_file(), f"tests/fixtures/logs/{entry_id}.log is missing: every knowledge-base entry needs one"
    scan = scan_file(fixture)
    found, notes = rank(KB, [scan])
    entry = KB.get(entry_id)
    if entry.severity == "harmless":
        assert found == [], "a harmless line must never become a finding"
        assert entry_id in [n.entry.id for n in notes]
    else:
        assert found, f"nothing found in {fixture.name}"
        assert found[0].entry.id == entry_id, [r.entry.id for r in found]
        assert found[0].hit.evidence, "the matched line is shown"
        assert scan.lines > 10, "fixtures carry unrelated output around the error"


def test_the_pip_notice_after_the_real_error_does_not_win():
    scan = scan_file(FIXTURES / "pip-notice-trap.log")
    found, notes = rank(KB, [scan])
    assert [r.entry.id for r in found] == ["pip-read-timeout"]
    notice = [n for n in notes if n.entry.id == "pip-upgrade-notice"]
    assert notice and notice[0].hit.last_line > found[0].hit.last_line, "the notice really is printed after the error"
    # the generic "Couldn't install torch." wrapper is there too, but explained by the timeout
    assert "webui-step-failed" in scan.hits


@pytest.mark.parametrize("name", ["clean-webui-windows.log", "clean-webui-linux.log"])
def test_a_clean_web_ui_log_gives_no_finding(name):
    assert ranked_ids(scan_file(FIXTURES / name)) == []


def test_the_latest_attempt_in_a_log_ranks_first():
    # First launch: the SD repo was gone; after the fix the second launch fails on CLIP.
    first = (FIXTURES / "sd-repo-gone-not-found.log").read_bytes()
    second = (FIXTURES / "clip-pkg-resources.log").read_bytes().replace(b"\r\n", b"\n")
    scan = Scanner(KB, "two-runs.log").feed_all(iter_lines(io.BytesIO(first + second))).finish()
    assert scan.last_run >= 1
    assert ranked_ids(scan)[:2] == ["clip-pkg-resources", "sd-repo-gone-not-found"]


def test_the_wrapper_alone_is_reported_when_nothing_explains_it():
    text = "Installing torch and torchvision\nsomething odd happened\nRuntimeError: Couldn't install torch.\nError code: 1\n"
    assert ranked_ids(scan_lines(KB, read_text_lines(text), "x")) == ["webui-step-failed"]


def test_context_keeps_a_generic_login_prompt_generic():
    # a deleted extension asks for a login too: that is not the Stable Diffusion repository
    text = ("Cloning K-diffusion into /x/repositories/k-diffusion...\n"
            "Cloning into '/x/repositories/k-diffusion'...\nUsername for 'https://github.com': \n")
    assert ranked_ids(scan_lines(KB, read_text_lines(text), "x")) == ["git-repo-auth-required"]
    text_sd = text.replace("K-diffusion into /x/repositories/k-diffusion", "Stable Diffusion into /x/repositories/stable-diffusion-stability-ai")
    assert ranked_ids(scan_lines(KB, read_text_lines(text_sd), "x")) == ["sd-repo-gone-prompt"]


def test_context_far_away_does_not_count():
    lines = ["Cloning Stable Diffusion into C:\\x\\repositories\\stable-diffusion-stability-ai..."]
    lines += [f"unrelated line {i}" for i in range(40)]
    lines += ["Username for 'https://github.com': "]
    assert ranked_ids(scan_lines(KB, lines, "x")) == ["git-repo-auth-required"]


def test_context_after_the_hit_counts():
    text = ("fatal: could not read Username for 'https://github.com': terminal prompts disabled\n"
            "RuntimeError: Couldn't clone Stable Diffusion.\n"
            'Command: "git" clone --config core.filemode=false "https://github.com/Stability-AI/stablediffusion.git" "/c/x"\n')
    assert ranked_ids(scan_lines(KB, read_text_lines(text), "x")) == ["sd-repo-gone-no-username"]


def test_supersedes_only_within_one_log():
    # An old sdsetup run log with a dead local proxy must not hide the given log's own cause.
    old = scan_lines(KB, read_text_lines("fatal: unable to access 'https://github.com/x/y.git/': Failed to connect to 127.0.0.1 port 7890 after 2 ms: Couldn't connect to server\n"),
                     "old.log", kind="run-log", priority=0)
    given = scan_file(FIXTURES / "pip-read-timeout.log", priority=3)
    assert ranked_ids(old, given) == ["pip-read-timeout", "local-proxy-dead"]
    # …while in one log the named cause hides what it explains
    both = scan_lines(KB, read_text_lines(
        "ERROR: Could not install packages due to an OSError: HTTPSConnectionPool(host='pypi.org', port=443): Max retries exceeded with url: /simple/x/ (Caused by ProxyError('Cannot connect to proxy.', NewConnectionError('refused')))\n"
        "pip._vendor.urllib3.exceptions.ReadTimeoutError: HTTPSConnectionPool(host='pypi.org', port=443): Read timed out.\n"), "one.log")
    assert ranked_ids(both) == ["local-proxy-dead"]


def test_the_given_log_outranks_sdsetups_own_logs_for_equal_errors():
    own = scan_file(FIXTURES / "hf-unreachable.log", "own.log", kind="run-log", priority=0)
    given = scan_file(FIXTURES / "cuda-oom.log", "given.log", priority=3)
    assert ranked_ids(own, given) == ["cuda-oom", "hf-unreachable"]


def test_errors_outrank_warnings_and_findings_are_capped():
    text = "\n".join([
        "This program is tested with 3.10.6 Python, but you have 3.12.1.",
        "torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
        "ImportError: libGL.so.1: cannot open shared object file: No such file or directory",
        "TypeError: AsyncConnectionPool.__init__() got an unexpected keyword argument 'socket_options'",
        "modules.devices.NansException: A tensor with NaNs was produced in VAE.",
        "ssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed",
        "OSError: Can't load tokenizer for 'openai/clip-vit-large-patch14'.",
    ])
    found, _ = rank(KB, [scan_lines(KB, read_text_lines(text), "x")])
    assert len(found) == 5
    assert "python-version-warning" not in [r.entry.id for r in found]
    assert [r.entry.specificity for r in found] == sorted((r.entry.specificity for r in found), reverse=True)


def test_repeated_errors_are_one_finding_with_a_count():
    line = "torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 4.00 GiB total capacity)"
    found, _ = rank(KB, [scan_lines(KB, [line] * 7, "x")])
    assert [r.entry.id for r in found] == ["cuda-oom"]
    assert found[0].occurrences == 7 and len(found[0].hit.evidence) == 1


def test_gbk_console_is_decoded_and_its_localised_git_error_recognised():
    path = FIXTURES / "gbk-console-sd-repo-gone.log"
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")
    scan = scan_file(path)
    found, _ = rank(KB, [scan])
    assert found[0].entry.id == "sd-repo-gone-not-found"
    assert any("未找到" in text for _, text in found[0].hit.evidence)
    assert scan.stats.encoding == "gb18030"


def test_the_fast_prefilter_never_hides_a_line_a_pattern_matches():
    from sdsetup.doctor.kb import parse_kb
    from sdsetup.doctor.match import _compiled

    compiled = _compiled(KB)
    checked = 0
    for fixture in FIXTURES.glob("*.log"):
        with open(fixture, "rb") as handle:
            for line in iter_lines(handle):
                if any(p.search(line) for e in KB.entries for p in (*e.patterns, *e.context)):
                    checked += 1
                    assert compiled.candidate(line), (fixture.name, line)
    assert checked > 80
    # a case-insensitive pattern cannot be prefiltered by its literal text, and is still found
    data = {"schema_version": 1, "error": [{"id": "shouty", "title": "t", "title_zh": "标题", "severity": "error", "specificity": 50,
                                            "patterns": ["(?i)disk is full"], "explanation": "e", "explanation_zh": "说明",
                                            "fix": {"steps": ["s"], "steps_zh": ["步骤"]}}]}
    kb = parse_kb(data)
    assert [r.entry.id for r in rank(kb, [scan_lines(kb, ["OSError: DISK IS FULL"], "x")])[0]] == ["shouty"]
