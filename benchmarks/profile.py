"""Summarise a py-spy profile of ``imgdesk process``: where the time goes besides the codec.

``python -m benchmarks.profile FILE`` reads what ``py-spy record --threads --format raw``
wrote (``python -m benchmarks.run --profile-engine FILE`` records one) and prints, per thread
group, how the samples split between decoding, encoding, waiting and everything else, then
the functions that take the most samples outside decode and encode.

py-spy counts a thread as active while the kernel has it running *or runnable*, so on a busy
machine threads woken from a lock show up "active" in the lock's ``wait``; samples whose
innermost frame is a known wait are counted as waiting whatever py-spy said. With ``--idle``
every thread is sampled all the time, and those waits dominate.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

# Innermost frames that mean the thread is waiting, not working.
_WAITS = (
    "Condition.wait ",
    "Event.wait ",
    "Semaphore.acquire ",
    "QueueListener.dequeue ",
    "_QEventLoop.run_forever ",  # Qt's own loop: poll() and C++ dispatch, no Python frame
    "select ",
    "sleep ",
)
_DECODE = ("ImageFile.load ",)
_ENCODE = ("ImageFile._save ", "_encode_tile ")
KINDS = ("decode", "encode", "waiting", "other")
GROUPS = ("workers", "main", "other threads")


@dataclass(frozen=True)
class Sample:
    """One stack as py-spy wrote it, with how many times it was seen."""

    group: str
    frames: tuple[str, ...]
    count: int

    @property
    def kind(self) -> str:
        """``decode``, ``encode``, ``waiting`` or ``other``."""
        if any(frame.startswith(_DECODE) for frame in self.frames):
            return "decode"
        if any(frame.startswith(_ENCODE) for frame in self.frames):
            return "encode"
        if not self.frames or self.frames[-1].startswith(_WAITS):
            return "waiting"  # no Python frame: a thread idle (or busy) in C only
        return "other"


def parse(text: str) -> list[Sample]:
    """The samples of py-spy's raw (collapsed stack) format, one stack per line."""
    samples = []
    for line in text.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        group = "other threads"
        if frames[0].startswith(("thread (", "process (")):
            label = frames.pop(0)
            # Qt's pool threads have no Python name: "thread (1234)" alone.
            if "MainThread" in label:
                group = "main"
            elif ":" not in label:
                group = "workers"
        samples.append(Sample(group, tuple(frames), int(count)))
    return samples


def _short(frame: str) -> str:
    """``function (package/file)``: the lines of one function count together."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({'/'.join(path.split('/')[-2:])})" if where else name


def summarise(text: str, top: int = 10) -> str:
    """The split by thread group and kind, then the top functions outside the codec."""
    samples = parse(text)
    total = sum(sample.count for sample in samples) or 1
    by_group: dict[str, Counter[str]] = {group: Counter() for group in GROUPS}
    own: Counter[tuple[str, str]] = Counter()
    inclusive: Counter[str] = Counter()
    for sample in samples:
        by_group[sample.group][sample.kind] += sample.count
        if sample.kind != "other":
            continue
        own[(sample.group, _short(sample.frames[-1]))] += sample.count
        # Where imgdesk's own code spends it: each imgdesk function once per stack.
        for frame in dict.fromkeys(_short(f) for f in sample.frames if "imgdesk/" in f):
            inclusive[frame] += sample.count
    lines = [f"{total:,} samples; by thread group and kind (% of all samples):"]
    lines.append(f"  {'group':<15}" + "".join(f"{kind:>10}" for kind in KINDS))
    for group, kinds in by_group.items():
        lines.append(f"  {group:<15}" + "".join(f"{kinds[kind] / total:>10.1%}" for kind in KINDS))
    working = sum(kinds["other"] for kinds in by_group.values()) or 1
    lines.append(f"top {top} innermost functions outside decode, encode and waits (self):")
    for (group, frame), count in own.most_common(top):
        lines.append(f"  {count / total:6.1%} {count / working:6.1%}  {group:<14} {frame}")
    lines.append(f"top {top} imgdesk functions outside decode, encode and waits (inclusive):")
    for frame, count in inclusive.most_common(top):
        lines.append(f"  {count / total:6.1%} {count / working:6.1%}  {frame}")
    lines.append("(first % of all samples; second % of the samples outside codec and waits)")
    return "\n".join(lines)


def main() -> None:
    """Print the summary of the profile named on the command line."""
    print(summarise(Path(sys.argv[1]).read_text()))


if __name__ == "__main__":
    main()
