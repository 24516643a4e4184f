"""Decoded pixels reuse freed memory instead of faulting fresh pages in for every image.

The engine serves big allocations from fresh pages (``engine._limit_heap_growth``, for a low
peak RSS); Pillow's block cache, set up by the executor, keeps the freed pixel blocks for
the next image. Measured with the kernel's own page-fault count in a fresh process: a
count, not a time, so a busy machine does not change the verdict.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from imgdesk.core.process import BLOCKS_PER_IMAGE
from imgdesk.core.storage_choice import StorageShelf
from imgdesk.engine.executor import QtPoolExecutor

REPO_ROOT = Path(__file__).resolve().parents[2]

# Compresses one 2000 x 2000 photo (16 MB of pixels, one Pillow block) a few times, as the
# engine's process does, and prints the minor page faults of the later rounds.
_CHILD = """
import io, json, resource, sys
from imgdesk.core.compress import compress_image
from imgdesk.core.process import reuse_pixel_memory
from imgdesk.core.settings import Settings
from imgdesk.engine.engine import _limit_heap_growth
from tests.images import encode, photo

_limit_heap_growth()
if sys.argv[1] == "reuse":
    reuse_pixel_memory(1)
data = encode(photo(2000, 2000), "JPEG", quality=90)
compress_image(data, Settings(), io.BytesIO())  # warm-up: imports, first allocations
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    compress_image(data, Settings(), io.BytesIO())
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before))
"""


def _faults(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, mode],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    faults: int = json.loads(done.stdout.strip().splitlines()[-1])
    return faults


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the fresh-pages policy is glibc's (Linux)"
)
def test_decodes_reuse_pixel_memory_instead_of_faulting_it_in_again() -> None:
    fresh, reused = _faults("fresh"), _faults("reuse")
    # Each 16 MB decode faults in about 3,900 pages without the cache, almost none with it.
    assert fresh > 3 * 3000
    assert reused < fresh / 3


def test_the_executor_keeps_as_many_blocks_as_its_decodes_use(qapp: object, tmp_path: Path) -> None:
    earlier = Image.core.get_blocks_max()
    Image.core.set_blocks_max(0)
    try:
        QtPoolExecutor(StorageShelf(tmp_path)).shutdown(1000)
        assert Image.core.get_blocks_max() == BLOCKS_PER_IMAGE * ((os.cpu_count() or 2) + 1)
    finally:
        Image.core.set_blocks_max(earlier)
