"""Read console logs the way people send them, in bounded memory.

Real logs are Windows consoles saved as CRLF, Chinese consoles in GBK/CP936, PowerShell redirects in
UTF-16, full of ANSI colour codes and progress bars that redraw a line with carriage returns, and
sometimes hundreds of megabytes. This module streams them block by block and yields clean lines:
decoded, colour codes removed, and for a redrawn line only what was finally on screen.
Memory stays bounded: one block plus at most one line of `max_line` characters.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

BLOCK = 1 << 16
MAX_LINE = 16 * 1024  # longer lines are cut here (a progress bar that never ends, a binary blob)

# CSI and OSC escape sequences, lone ESC sequences, and "←[32m" (what a legacy Windows console shows
# for ESC when text is copied out of it).
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|\u2190\[[0-9;]*[A-Za-z]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# Tried in order for a line that is not UTF-8. gb18030 is a superset of GBK/CP936 (Chinese Windows);
# cp1252 covers Western Windows consoles; latin-1 decodes anything, so a line is never lost.
FALLBACK_ENCODINGS = ("gb18030", "cp1252", "latin-1")


@dataclass
class ReadStats:
    """What the reader saw; shown in the doctor report so a helpdesk knows how the log was read."""

    bytes: int = 0
    lines: int = 0
    encoding: str = "utf-8"
    lines_by_encoding: dict = field(default_factory=dict)
    cut_lines: int = 0  # lines longer than max_line (kept: their start, or the last redraw)

    def note(self, encoding: str) -> None:
        self.lines_by_encoding[encoding] = self.lines_by_encoding.get(encoding, 0) + 1

    def finish(self) -> None:
        if self.encoding.startswith("utf-16"):
            return
        non_utf8 = {k: v for k, v in self.lines_by_encoding.items() if k != "utf-8"}
        if non_utf8:
            self.encoding = max(non_utf8, key=non_utf8.get)


def clean_line(text: str) -> str:
    """Colour codes and control characters out, a redrawn line reduced to its last drawing."""
    if "\r" in text:
        segments = [s for s in text.split("\r") if s.strip()]
        text = segments[-1] if segments else ""
    if "\x1b" in text or "\u2190[" in text:
        text = _ANSI.sub("", text)
    if "\b" in text:
        # a backspace erases the character before it (spinners)
        out: list[str] = []
        for ch in text:
            if ch == "\b":
                if out:
                    out.pop()
            else:
                out.append(ch)
        text = "".join(out)
    return _CONTROL.sub("", text).rstrip()


def _sniff_utf16(head: bytes) -> str | None:
    if head.startswith(codecs.BOM_UTF16_LE):
        return "utf-16-le"
    if head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16-be"
    sample = head[:4096]
    if len(sample) >= 16:
        # ASCII text in UTF-16 has a NUL in every other byte
        odd_nuls = sample[1::2].count(0)
        even_nuls = sample[0::2].count(0)
        half = len(sample) // 2
        if odd_nuls > half * 0.6 and even_nuls < half * 0.1:
            return "utf-16-le"
        if even_nuls > half * 0.6 and odd_nuls < half * 0.1:
            return "utf-16-be"
    return None


class _Splitter:
    """Splits a stream (bytes or str) into lines without ever holding more than one block + one line."""

    def __init__(self, newline, carriage, max_line: int, stats: ReadStats) -> None:
        self.newline = newline
        self.carriage = carriage
        self.max_line = max_line
        self.stats = stats
        self.pending = newline[:0]
        self.discarding = False  # dropping the rest of an over-long line until its newline

    def feed(self, chunk) -> Iterator:
        data = self.pending + chunk
        start = 0
        while True:
            end = data.find(self.newline, start)
            if end < 0:
                break
            line = data[start:end]
            start = end + 1
            if self.discarding:  # the end of a line whose start was already yielded
                self.discarding = False
                continue
            if len(line) > self.max_line:
                line = self._shorten(line)
            yield line
        rest = data[start:]
        if self.discarding:
            rest = rest[:0]
        elif len(rest) > self.max_line:
            tail = rest.rfind(self.carriage, 0, len(rest) - 1)
            if tail >= 0 and len(rest) - tail <= self.max_line:
                rest = rest[tail:]  # keep only the latest redraw of a progress bar
            else:
                self.discarding = True
                yield self._shorten(rest)
                rest = rest[:0]
        self.pending = rest

    def _shorten(self, line):
        tail = line.rfind(self.carriage, 0, len(line) - 1)
        if tail >= 0 and len(line) - tail <= self.max_line:
            return line[tail:]
        self.stats.cut_lines += 1
        return line[: self.max_line]

    def close(self) -> Iterator:
        if self.pending and not self.discarding:
            yield self.pending
        self.pending = self.newline[:0]


def iter_lines(stream: BinaryIO, stats: ReadStats | None = None, *, max_line: int = MAX_LINE, block: int = BLOCK) -> Iterator[str]:
    """Yield the clean lines of a binary stream (line numbers are positions in this sequence, from 1)."""
    stats = stats if stats is not None else ReadStats()
    head = stream.read(block)
    if not head:
        stats.finish()
        return
    utf16 = _sniff_utf16(head)
    if utf16:
        stats.encoding = utf16
        yield from _iter_utf16(stream, head, utf16, stats, max_line, block)
        stats.finish()
        return
    if head.startswith(codecs.BOM_UTF8):
        head = head[3:]
    splitter = _Splitter(b"\n", b"\r", max_line * 4, stats)  # bytes: room for 4-byte characters
    sticky = "utf-8"
    chunk = head
    while chunk:
        stats.bytes += len(chunk)
        for raw in splitter.feed(chunk):
            text, sticky = _decode(raw, sticky, stats)
            stats.lines += 1
            yield clean_line(text)[:max_line]
        chunk = stream.read(block)
    for raw in splitter.close():
        text, sticky = _decode(raw, sticky, stats)
        stats.lines += 1
        yield clean_line(text)[:max_line]
    stats.finish()


def _decode(raw: bytes, sticky: str, stats: ReadStats) -> tuple[str, str]:
    """UTF-8 when the line is valid UTF-8 (a strong signal), else the encoding that worked last."""
    if raw.isascii():
        return raw.decode("ascii"), sticky
    candidates = ["utf-8"]
    if sticky != "utf-8":
        candidates.append(sticky)
    candidates += [e for e in FALLBACK_ENCODINGS if e not in candidates]
    for encoding in candidates:
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            if encoding != "utf-8" or exc.reason != "unexpected end of data":
                continue
            text = raw[: exc.start].decode("utf-8", "replace")  # a line cut inside its last character
        stats.note(encoding)
        return text, (encoding if encoding != "utf-8" else sticky)
    return raw.decode("utf-8", "replace"), sticky  # unreachable: latin-1 decodes everything


def _iter_utf16(stream: BinaryIO, head: bytes, encoding: str, stats: ReadStats, max_line: int, block: int) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    splitter = _Splitter("\n", "\r", max_line, stats)
    chunk = head
    first = True
    while chunk:
        stats.bytes += len(chunk)
        text = decoder.decode(chunk)
        if first:
            text = text.lstrip("\ufeff")
            first = False
        for line in splitter.feed(text):
            stats.lines += 1
            stats.note(encoding)
            yield clean_line(line)
        chunk = stream.read(block)
    tail = decoder.decode(b"", final=True)
    for line in list(splitter.feed(tail)) + list(splitter.close()):
        stats.lines += 1
        yield clean_line(line)


def read_text_lines(text: str) -> Iterator[str]:
    """Clean lines of text already in memory (check/verify messages, tests)."""
    for line in text.replace("\r\n", "\n").split("\n"):
        yield clean_line(line)
