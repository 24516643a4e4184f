"""LocalStorage: the folder implementation of the Storage seam, addressed by keys."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imgdesk.core.errors import ErrorCode, ImageError
from imgdesk.core.storage import LocalStorage, Storage, split_key, storage_key

REQUEST_ID = "3f2c7a9e-1b4d-4c8e-9f00-5a6b7c8d9e0f"


@pytest.fixture
def local(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "images")


def test_keys_are_request_id_and_file_name_and_refuse_escapes() -> None:
    key = storage_key(REQUEST_ID, "0001_mug_1.jpg")
    assert key == f"{REQUEST_ID}/0001_mug_1.jpg"
    assert split_key(key) == (REQUEST_ID, "0001_mug_1.jpg")
    for bad_id, bad_name in (("..", "a.jpg"), (REQUEST_ID, "../a.jpg"), ("a/b", "x"), ("x", "")):
        with pytest.raises(ValueError):
            storage_key(bad_id, bad_name)


def test_an_output_appears_whole_when_its_block_ends(local: LocalStorage) -> None:
    key = storage_key(REQUEST_ID, "0001_mug_1.jpg")
    with local.open_output(key) as handle:
        handle.write(b"half")
        assert not local.exists(key)
        assert local.names(REQUEST_ID) == set()  # the temp file is hidden
        handle.write(b" and half")
    assert local.exists(key)
    assert local.path(key).read_bytes() == b"half and half"
    assert local.names(REQUEST_ID) == {"0001_mug_1.jpg"}


def test_a_failed_write_leaves_nothing(local: LocalStorage) -> None:
    key = storage_key(REQUEST_ID, "0001_mug_1.jpg")
    with pytest.raises(RuntimeError), local.open_output(key) as handle:
        handle.write(b"partial")
        raise RuntimeError("encoder broke")
    assert not local.exists(key)
    assert os.listdir(local.folder(REQUEST_ID)) == []


def test_copy_delete_and_delete_request(local: LocalStorage) -> None:
    first = storage_key(REQUEST_ID, "0001_mug_1.jpg")
    second = storage_key("other-request", "0001_mug_1.jpg")
    local.put_bytes(first, b"jpeg bytes")
    local.copy(first, second)
    assert local.path(second).read_bytes() == b"jpeg bytes"
    local.delete(first)
    local.delete(first)  # already gone: no error
    assert not local.exists(first) and local.exists(second)
    local.delete_request("other-request")
    assert not local.folder("other-request").exists()


def test_url_is_a_file_uri_or_under_the_public_base(local: LocalStorage) -> None:
    key = storage_key(REQUEST_ID, "0001_mug 1.jpg")
    local.put_bytes(key, b"x")
    assert local.url(key) == local.path(key).resolve().as_uri()
    assert local.url(key, "https://cdn.example/shop/") == (
        f"https://cdn.example/shop/{REQUEST_ID}/0001_mug%201.jpg"
    )
    assert local.local_path(key) == local.path(key)
    assert local.key_of(local.path(key)) == key


def test_clean_partial_removes_what_a_crash_left(local: LocalStorage) -> None:
    folder = local.folder(REQUEST_ID)
    folder.mkdir(parents=True)
    (folder / ".0001_mug_1.jpg.abcd1234.part").write_bytes(b"half")
    (folder / "0002_mug_1.jpg").write_bytes(b"whole")
    assert local.clean_partial(REQUEST_ID) == 1
    assert local.names(REQUEST_ID) == {"0002_mug_1.jpg"}


def test_an_unwritable_root_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "images"
    blocker.write_bytes(b"a file where the folder should be")
    local = LocalStorage(blocker)
    with pytest.raises(ImageError) as info:
        local.check_writable(REQUEST_ID)
    assert info.value.code == ErrorCode.STORAGE
    assert "is a file, not a folder" in info.value.message


def test_local_storage_is_a_storage() -> None:
    storage: Storage = LocalStorage(Path("images"))  # mypy checks the protocol
    assert storage.local_path(storage_key(REQUEST_ID, "a.jpg")) is not None
