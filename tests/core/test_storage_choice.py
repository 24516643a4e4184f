"""``--storage DEST``: a folder or an S3 bucket, recorded with the request without secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imgdesk.core.errors import SettingsError
from imgdesk.core.settings import Settings
from imgdesk.core.storage import LocalStorage
from imgdesk.core.storage_choice import (
    MAX_PRESIGN_EXPIRY_S,
    StorageChoice,
    StorageShelf,
    parse_destination,
)


def test_an_s3_destination_names_its_bucket_prefix_endpoint_and_region() -> None:
    choice = parse_destination("s3://shop-images/catalogue/spring/", "http://127.0.0.1:9000/", "eu")
    assert (choice.kind, choice.bucket, choice.prefix) == ("s3", "shop-images", "catalogue/spring")
    assert (choice.endpoint, choice.region) == ("http://127.0.0.1:9000", "eu")
    assert choice.presign_expiry_s == MAX_PRESIGN_EXPIRY_S
    assert choice.describe() == "s3://shop-images/catalogue/spring at http://127.0.0.1:9000"
    assert parse_destination("s3://shop-images").prefix == ""


def test_a_folder_destination_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    choice = parse_destination("outputs")
    assert choice == StorageChoice(folder=str(tmp_path / "outputs"))
    assert not choice.is_default


@pytest.mark.parametrize(
    ("destination", "bucket", "prefix"),
    [
        ("s3://shop-images/", "shop-images", ""),
        ("S3://shop.images/catalogue", "shop.images", "catalogue"),
        ("s3://shop-images//2024/spring/", "shop-images", "2024/spring"),
    ],
)
def test_an_s3_destination_is_tidied(destination: str, bucket: str, prefix: str) -> None:
    choice = parse_destination(destination)
    assert (choice.kind, choice.bucket, choice.prefix) == ("s3", bucket, prefix)


@pytest.mark.parametrize(
    ("destination", "says"),
    [
        ("s3://", "names no bucket"),
        ("s3:///prefix", "names no bucket"),
        ("s3://Shop-Images", "lowercase"),
        ("s3://ab", "3 to 63"),
        ("s3://shop_images", "3 to 63"),
        ("s3://shop..images", "3 to 63"),
        ("s3://192.168.1.20", "IP address"),
        ("s3://shop/../etc", "not a usable key prefix"),
        ("gs://bucket", "neither a folder nor an s3:// address"),
        ("  ", "needs a folder"),
    ],
)
def test_a_destination_that_cannot_be_used_says_why(destination: str, says: str) -> None:
    with pytest.raises(SettingsError, match=says):
        parse_destination(destination)


def test_s3_options_without_a_bucket_and_bad_values_are_refused() -> None:
    with pytest.raises(SettingsError, match="go with --storage s3://"):
        parse_destination("/tmp/out", endpoint="http://127.0.0.1:9000")
    with pytest.raises(SettingsError, match="between 1 second and 7 days"):
        parse_destination("s3://bucket-a", presign_expiry_s=MAX_PRESIGN_EXPIRY_S + 1)
    with pytest.raises(SettingsError, match="http:// or https:// URL"):
        parse_destination("s3://bucket-a", endpoint="127.0.0.1:9000")


def test_a_choice_round_trips_through_the_stored_settings() -> None:
    choice = StorageChoice(kind="s3", bucket="shop-images", prefix="p", cache_control="no-cache")
    settings = Settings(storage=choice, s3_access_key_id="AKIAEXAMPLE")
    stored = json.loads(json.dumps(settings.to_dict()))
    assert Settings.from_dict(stored) == settings
    assert not [name for name in stored if "secret" in name and name != "webhook_secret"]
    # Settings stored before storage choices existed keep the data folder.
    assert Settings.from_dict({"concurrency": 3}).storage.is_default


def test_the_shelf_opens_each_local_choice_once(tmp_path: Path) -> None:
    shelf = StorageShelf(tmp_path)
    default = shelf.open(StorageChoice())
    assert isinstance(default, LocalStorage) and default.root == tmp_path / "images"
    elsewhere = shelf.open(StorageChoice(folder=str(tmp_path / "out")))
    assert isinstance(elsewhere, LocalStorage) and elsewhere.root == tmp_path / "out"
    assert shelf.open(StorageChoice()) is default
