import subprocess
import sys
from pathlib import Path

import pytest

from imgdesk.core.errors import DataFolderError
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


def test_a_data_folder_that_cannot_be_made_is_one_sentence(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.write_text("a file where the data folder should be")
    lock = DataDirLock(data_dir)
    with pytest.raises(DataFolderError) as info:
        lock.acquire("imgdesk process")
    assert info.value.message == (
        f"imgdesk cannot write to its data folder {data_dir}: a file stands where a folder "
        "should be. Choose another folder with --data-dir or IMGDESK_DATA_DIR."
    )
    assert data_dir.read_text() == "a file where the data folder should be"
