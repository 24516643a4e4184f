"""The window's S3 secret: kept in a keyring, never anywhere else; none is one clear sentence."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backends.fail import Keyring as NoKeyring
from keyrings.alt.file import PlaintextKeyring

from imgdesk.core.errors import ImageError, SettingsError
from imgdesk.core.secrets import forget_secret, load_secret, save_secret
from imgdesk.core.storage_choice import StorageChoice, check_storage
from tests.s3server import S3Bucket


@pytest.fixture
def file_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A real keyring backend (a file) where this machine has no system keyring."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    before = keyring.get_keyring()
    keyring.set_keyring(PlaintextKeyring())
    yield tmp_path / "data"
    keyring.set_keyring(before)


def test_a_secret_is_kept_found_and_forgotten_by_its_access_key(file_keyring: Path) -> None:
    assert load_secret("AKIAEXAMPLE") is None
    save_secret("AKIAEXAMPLE", "s3cr3t/value")
    assert load_secret("AKIAEXAMPLE") == "s3cr3t/value"
    assert load_secret("AKIAOTHER") is None
    assert load_secret("") is None
    forget_secret("AKIAEXAMPLE")
    assert load_secret("AKIAEXAMPLE") is None
    forget_secret("AKIAEXAMPLE")  # twice: nothing to forget, no error


def test_without_a_safe_keyring_saving_says_what_to_do_instead(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    before = keyring.get_keyring()
    try:
        for backend in (NoKeyring(), PlaintextKeyring()):  # none, and one that is a plain file
            keyring.set_keyring(backend)
            with pytest.raises(SettingsError, match="no system keyring.*AWS_ACCESS_KEY_ID"):
                save_secret("AKIAEXAMPLE", "s3cr3t")
            assert load_secret("AKIAEXAMPLE") is None
    finally:
        keyring.set_keyring(before)


def test_checking_a_folder_writes_nothing_that_stays(tmp_path: Path) -> None:
    folder = tmp_path / "outputs"
    check_storage(StorageChoice(folder=str(folder)), tmp_path)
    assert folder.is_dir() and list(folder.iterdir()) == []
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(ImageError, match="is a file, not a folder"):
        check_storage(StorageChoice(folder=str(blocker / "inside")), tmp_path)


def test_checking_a_bucket_proves_it_or_names_what_is_wrong(s3_bucket: S3Bucket) -> None:
    choice = StorageChoice(
        kind="s3", bucket=s3_bucket.name, prefix="shop", endpoint=s3_bucket.endpoint
    )
    keys = (s3_bucket.writer.access_key, s3_bucket.writer.secret_key)
    check_storage(choice, Path("unused"), *keys)
    missing = choice.replace(bucket="no-such-bucket-here")
    with pytest.raises(ImageError, match="no-such-bucket-here") as raised:
        check_storage(missing, Path("unused"), *keys)
    assert s3_bucket.writer.secret_key not in raised.value.message
