import pytest

from imgdesk.core.errors import SettingsError
from imgdesk.core.settings import MIB, Settings


def test_defaults_follow_the_spec() -> None:
    settings = Settings()
    assert settings.concurrency == 5
    assert settings.jpeg_quality == 50
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
    settings = Settings(jpeg_quality=70, allowed_types=("image/png",), webhook_url="https://x.io/h")
    assert Settings.from_dict(settings.to_dict()) == settings


def test_unknown_stored_keys_are_ignored() -> None:
    assert Settings.from_dict({"jpeg_quality": 60, "gone_setting": 1}).jpeg_quality == 60


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("jpeg_quality", 0),
        ("jpeg_quality", 101),
        ("concurrency", 0),
        ("max_retries", -1),
        ("jpeg_quality", "50"),
        ("jpeg_quality", True),
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
