"""Logs as people send them: CRLF, ANSI colours, progress bars, GBK, UTF-16, and very large files."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sdsetup.doctor.logread import ReadStats, clean_line, iter_lines

ROOT = Path(__file__).resolve().parents[1]


def lines_of(data: bytes, **kwargs) -> tuple[list[str], ReadStats]:
    stats = ReadStats()
    return list(iter_lines(io.BytesIO(data), stats, **kwargs)), stats


def test_crlf_ansi_and_progress_bar_redraws_become_what_was_on_screen():
    data = (
        b"\x1b[32mInstalling torch and torchvision\x1b[0m\r\n"
        b"  Downloading torch-2.1.2+cu121-cp310-cp310-win_amd64.whl (2473.9 MB)\r\n"
        b"     \x1b[91m\xe2\x94\x81\xe2\x94\x81\x1b[0m 0.1/2.5 GB 9.8 MB/s\r     \x1b[91m\xe2\x94\x81\xe2\x94\x81\xe2\x94\x81\x1b[0m 1.2/2.5 GB 9.8 MB/s"
        b"\r     \x1b[32m\xe2\x94\x81\xe2\x94\x81\xe2\x94\x81\xe2\x94\x81\x1b[0m 2.5/2.5 GB 9.8 MB/s eta 0:00:00\r\n"
        b" 45%|\xe2\x96\x88\xe2\x96\x88      | 9/20 [00:01<00:01,  8.04it/s]\r100%|\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88\xe2\x96\x88| 20/20 [00:02<00:00,  8.04it/s]\r\n"
        b"\x1b]0;title\x07\x1b[1;31mRuntimeError: Couldn't install torch.\x1b[0m\r\n"
        b"\xe2\x86\x90[33mWARNING: copied from a legacy console\xe2\x86\x90[0m\r\n"
        b"spinner \\\b|\b/\bdone\r\n"
        b"no newline at the end"
    )
    lines, stats = lines_of(data)
    assert lines == [
        "Installing torch and torchvision",
        "  Downloading torch-2.1.2+cu121-cp310-cp310-win_amd64.whl (2473.9 MB)",
        "     ━━━━ 2.5/2.5 GB 9.8 MB/s eta 0:00:00",
        "100%|████| 20/20 [00:02<00:00,  8.04it/s]",
        "RuntimeError: Couldn't install torch.",
        "WARNING: copied from a legacy console",
        "spinner done",
        "no newline at the end",
    ]
    assert stats.lines == 8 and stats.encoding == "utf-8"


def test_a_redrawn_line_that_ends_with_a_blank_redraw_keeps_the_last_drawing():
    assert clean_line("50%|##   |\r100%|#####|\r          \r") == "100%|#####|"


def test_gbk_lines_are_decoded_and_utf8_lines_stay_utf8():
    data = "请按任意键继续. . .\r\n".encode("gbk") + "模型已加载\n".encode("utf-8") + "'python' 不是内部或外部命令\r\n".encode("gbk")
    lines, stats = lines_of(data)
    assert lines == ["请按任意键继续. . .", "模型已加载", "'python' 不是内部或外部命令"]
    assert stats.encoding == "gb18030"


def test_western_windows_console_falls_back_without_losing_the_line():
    lines, _ = lines_of("Zugriff verweigert: café\n".encode("cp1252"))
    assert lines[0].startswith("Zugriff verweigert: caf")


@pytest.mark.parametrize("encoding, bom", [("utf-16-le", b"\xff\xfe"), ("utf-16-le", b""), ("utf-16-be", b"\xfe\xff")])
def test_powershell_utf16_redirects_are_read(encoding, bom):
    text = "venv \"C:\\sd\\venv\\Scripts\\Python.exe\"\r\nRuntimeError: Torch is not able to use GPU\r\n中文\r\n" * 3
    lines, stats = lines_of(bom + text.encode(encoding))
    assert lines[:3] == ['venv "C:\\sd\\venv\\Scripts\\Python.exe"', "RuntimeError: Torch is not able to use GPU", "中文"]
    assert len(lines) == 9 and stats.encoding.startswith("utf-16")


def test_utf8_bom_is_dropped():
    assert lines_of(b"\xef\xbb\xbfPython 3.10.6\n")[0] == ["Python 3.10.6"]


def test_an_endless_line_is_cut_and_the_numbering_stays_right():
    data = b"first\n" + b"x" * 200_000 + b"\nthird\n"
    lines, stats = lines_of(data, max_line=1000, block=4096)
    assert len(lines) == 3 and lines[0] == "first" and lines[2] == "third"
    assert len(lines[1]) == 1000 and stats.cut_lines == 1


def test_an_endless_progress_bar_keeps_only_its_last_drawing():
    redraws = b"".join(b"\r%3d%%|" % (i % 100) + b"#" * 30 for i in range(20_000))
    lines, stats = lines_of(b"before\n" + redraws + b"\r100%|done\nafter\n", max_line=1000, block=4096)
    assert lines == ["before", "100%|done", "after"]
    assert stats.cut_lines == 0


def test_a_line_cut_inside_a_character_still_decodes():
    data = ("é" * 600).encode("utf-8") + b"\n"  # 1200 bytes, cut at 1001 (inside a character)
    lines, _ = lines_of(data, max_line=250, block=128)
    assert set(lines[0]) == {"é"}


_MEASURE = r"""
import json, resource, sys
sys.path.insert(0, sys.argv[1])
from sdsetup.doctor.kb import load_kb
from sdsetup.doctor.logread import ReadStats, iter_lines
from sdsetup.doctor.match import Scanner, rank
kb = load_kb()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
stats = ReadStats()
with open(sys.argv[2], "rb") as handle:
    scan = Scanner(kb, "big.log").feed_all(iter_lines(handle, stats)).finish()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
found, _ = rank(kb, [scan])
print(json.dumps({"growth_kib": after - before, "lines": stats.lines, "bytes": stats.bytes, "ids": [r.entry.id for r in found],
                  "lines_of": {r.entry.id: r.hit.last_line for r in found}}))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="resource is POSIX-only")
def test_a_50_mb_log_is_read_in_bounded_memory(tmp_path):
    big = tmp_path / "big.log"
    block = (
        "Total progress:  45%|████▌     | 9/20 [00:01<00:01,  8.04it/s]\r"
        "Total progress: 100%|██████████| 20/20 [00:02<00:00,  8.21it/s]\r\n"
        "  Downloading numpy-1.26.3-cp310-cp310-win_amd64.whl (15.8 MB)\r\n"
        "\x1b[32mModel loaded in 5.3s (load weights from disk: 0.6s, create model: 0.5s)\x1b[0m\r\n"
        "Requirement already satisfied: filelock in c:\\sd\\venv\\lib\\site-packages (from torch==2.1.2) (3.13.1)\r\n"
    ).encode("utf-8")
    repeats = (50 * 1024 * 1024) // len(block)
    with open(big, "wb") as out:
        out.write(b"Python 3.10.6 (tags/v3.10.6:9c7b4bd, Aug  1 2022, 21:53:49) [MSC v.1932 64 bit (AMD64)]\r\n")
        chunk = block * 1000
        for _ in range(repeats // 1000):
            out.write(chunk)
        out.write(b"torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB\r\n")
        out.write(b"\r\n[notice] A new release of pip available: 22.2.1 -> 23.1.2\r\n")
    size = big.stat().st_size
    assert size > 49 * 1024 * 1024
    result = subprocess.run([sys.executable, "-c", _MEASURE, str(ROOT), str(big)], capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["bytes"] == size
    assert report["ids"] == ["cuda-oom"]
    assert report["lines_of"]["cuda-oom"] == report["lines"] - 2
    # Holding the file would cost > 50 MB (decoded text several times that); the reader keeps a block
    # and one line. Allow some slack for the interpreter's own allocations.
    assert report["growth_kib"] < 16 * 1024, report
