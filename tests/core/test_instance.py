import subprocess
import sys
from pathlib import Path

from imgdesk.core.instance import DataDirLock

HOLD = """
import sys, time
from pathlib import Path
from imgdesk.core.instance import DataDirLock
lock = DataDirLock(Path(sys.argv[1]))
print(lock.acquire("window"), flush=True)
time.sleep(60)
"""


def test_a_second_process_cannot_take_the_lock_until_the_first_dies(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "True"
        lock = DataDirLock(tmp_path)
        assert not lock.acquire("imgdesk process")
        assert lock.holder() == f"window (process {holder.pid})"
    finally:
        holder.kill()  # like kill -9: the OS releases the lock
        holder.wait()
        if holder.stdout:
            holder.stdout.close()
    lock = DataDirLock(tmp_path)
    assert lock.acquire("imgdesk process")
    lock.release()
