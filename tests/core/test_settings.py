import json

import pytest

from imgdesk.core.errors import SettingsError
from imgdesk.core.output import OutputSettings
from imgdesk.core.settings import MIB, Settings


def test_defaults_follow_the_spec() -> None:
    settings = Settings()
    assert settings.concurrency == 5
    assert settings.output == OutputSettings()
    assert (settings.output.format, settings.output.quality) == ("jpeg", 50)
    assert settings.max_download_bytes == 10 * MIB
    assert settings.allowed_types == ("image/jpeg", "image/png")
    assert settings.max_retries == 3
    assert settings.retry_base_delay_s == 1.0
    assert settings.retry_after_cap_s == 60.0
    assert (settings.connect_timeout_s, settings.read_timeout_s) == (10.0, 30.0)
    assert settings.total_timeout_s == 120.0
    assert settings.max_redirects == 5
    assert settings.block_private_addresses is False
    assert (settings.webhook_retries, settings.webhook_first_delay_ms) == (3, 1000)


def test_round_trip_through_a_dict() -> None:
    output = OutputSettings(format="webp", quality=70, max_width=1200, target_size_kb=150)
    settings = Settings(output=output, allowed_types=("image/png",), webhook_url="https://x.io/h")
    stored = json.loads(json.dumps(settings.to_dict()))
    assert stored["output"]["format"] == "webp"  # nested, not flattened
    assert Settings.from_dict(stored) == settings


def test_unknown_stored_keys_are_ignored() -> None:
    assert Settings.from_dict({"concurrency": 3, "gone_setting": 1}).concurrency == 3


def test_a_stored_jpeg_quality_becomes_the_output_quality() -> None:
    settings = Settings.from_dict({"jpeg_quality": 60, "concurrency": 2})
    assert settings.output == OutputSettings(quality=60)
    assert "jpeg_quality" not in settings.to_dict()


def test_the_reuse_key_changes_with_every_output_setting() -> None:
    settings = Settings()
    base = OutputSettings()
    variants = [
        base,
        base.replace(format="webp"),
        base.replace(format="avif"),
        base.replace(quality=51),
        base.replace(max_width=1200),
        base.replace(max_height=1200),
        base.replace(target_size_kb=150),
        base.replace(keep_original=False),
        base.replace(format="webp", flatten=True),
    ]
    keys = [settings.output_key(output) for output in variants]
    assert len(set(keys)) == len(keys)
    assert settings.output_key(base) == settings.output_key(OutputSettings())
    # The decoding limits count too: an image refused now must not come from the cache.
    assert Settings(max_pixels=1000).output_key(base) != settings.output_key(base)
    assert Settings(allowed_types=("image/png",)).output_key(base) != settings.output_key(base)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("concurrency", 0),
        ("max_retries", -1),
        ("concurrency", "5"),
        ("concurrency", True),
        ("output", {"format": "webp"}),
    ],
)
def test_bad_values_are_refused_with_the_setting_named(field: str, value: object) -> None:
    with pytest.raises(SettingsError, match=field):
        Settings(**{field: value})


def test_allowed_types_must_be_known() -> None:
    with pytest.raises(SettingsError, match="image/tga"):
        Settings(allowed_types=("image/jpeg", "image/tga"))


def test_urls_must_be_http() -> None:
    with pytest.raises(SettingsError, match="webhook_url"):
        Settings(webhook_url="ftp://example.com/hook")
    with pytest.raises(SettingsError, match="public_base_url"):
        Settings(public_base_url="cdn.example.com")
