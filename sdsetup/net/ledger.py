"""Finding the bad bytes after a sha256 mismatch, so the cost of a bad byte is a block, not the file.

The expected sha256 covers the whole file, so one copy cannot tell which bytes are wrong. After a
mismatch the engine keeps a digest per block (`ledger_block` bytes) of every copy of that block it
fetched, with the source(s) that sent it. A block is *settled* when the bytes now in `DEST.part` were
seen at least twice (two fetches that agree: random corruption does not repeat itself). Each repair
round re-fetches only the blocks that are not settled, from one source, then the whole file is hashed
again. When every block is settled and the hash still differs, the source agrees with itself on wrong
bytes (another version of the file, an outdated hash, a hostile mirror): it is given up, what it sent
stops counting, and the next source repairs the blocks.

Pure bookkeeping, no I/O: the job reads the blocks and asks these functions what to do next.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sdsetup.net.segments import ALIGN, MiB

MIN_LEDGER_BLOCK = 1 * MiB
MAX_LEDGER_BLOCKS = 1024  # digests kept per file: a 4 GiB checkpoint gets 4 MiB blocks
MAX_ROUNDS = 6  # repair rounds one source gets before "keeps sending different bytes"


def ledger_block(size: int) -> int:
    raw = max(MIN_LEDGER_BLOCK, -(-size // MAX_LEDGER_BLOCKS))
    return -(-raw // ALIGN) * ALIGN


@dataclass(frozen=True)
class Observation:
    digest: str
    sources: frozenset[int]  # indices of the sources whose bytes made up this copy of the block


@dataclass
class Ledger:
    size: int
    block: int
    seen: dict[int, list[Observation]] = field(default_factory=dict)
    current: dict[int, str] = field(default_factory=dict)  # digest of each block as it is in DEST.part now

    @classmethod
    def for_size(cls, size: int) -> "Ledger":
        return cls(size, ledger_block(size))

    def count(self) -> int:
        return max(1, -(-self.size // self.block)) if self.size else 0

    def span(self, index: int) -> tuple[int, int]:
        start = index * self.block
        return start, min(self.size, start + self.block)

    def blocks_in(self, start: int, end: int) -> range:
        """The blocks that [start, end) touches."""
        if end <= start:
            return range(0)
        return range(start // self.block, min(self.count(), -(-end // self.block)))

    def record(self, index: int, digest: str, sources: frozenset[int] | None) -> None:
        """The block now holds bytes with `digest`; `sources` None: not a whole fetch (a broken round
        left it half rewritten), so it is no evidence, only the new state."""
        self.current[index] = digest
        if sources is not None:
            self.seen.setdefault(index, []).append(Observation(digest, sources))

    def votes(self, index: int) -> int:
        digest = self.current.get(index)
        return sum(1 for o in self.seen.get(index, ()) if o.digest == digest)

    def unsettled(self) -> list[int]:
        """Blocks whose bytes in DEST.part were not seen twice: the ones a repair round fetches."""
        return [i for i in range(self.count()) if self.votes(i) < 2]

    def forget(self, source: int) -> None:
        """A source sent wrong bytes that agree with themselves: nothing it sent counts any more."""
        for index, observations in self.seen.items():
            self.seen[index] = [o for o in observations if source not in o.sources]

    def ranges(self, blocks: list[int]) -> list[tuple[int, int]]:
        spans: list[tuple[int, int]] = []
        for index in sorted(blocks):
            start, end = self.span(index)
            if spans and spans[-1][1] == start:
                spans[-1] = (spans[-1][0], end)
            else:
                spans.append((start, end))
        return spans


def next_step(ledger: Ledger, rounds: int, *, max_rounds: int = MAX_ROUNDS) -> tuple[str, list[int]]:
    """What to do after a mismatch with the source now repairing (`rounds` rounds done by it):
    ("repair", blocks) fetch those blocks again from it; ("self-consistent", []) every block agrees
    with an earlier copy yet the file is wrong: give the source up; ("unstable", []) it had its rounds
    and still sends different bytes each time: give it up."""
    blocks = ledger.unsettled()
    if not blocks:
        return "self-consistent", []
    if rounds >= max_rounds:
        return "unstable", []
    return "repair", blocks
