"""Settings.RANGES: every number of the settings is checked, against the one table."""

from __future__ import annotations

import dataclasses

import pytest

from imgdesk.core.errors import SettingsError
from imgdesk.core.settings import RANGES, Settings

NUMBERS = sorted(
    field.name
    for field in dataclasses.fields(Settings)
    if isinstance(getattr(Settings(), field.name), int | float)
    and not isinstance(getattr(Settings(), field.name), bool)
)


def test_every_number_of_the_settings_has_a_range_and_its_default_is_in_it() -> None:
    assert sorted(RANGES) == NUMBERS
    for name, (low, high) in RANGES.items():
        assert low <= getattr(Settings(), name) <= high, name


@pytest.mark.parametrize("name", sorted(RANGES))
def test_a_number_just_outside_its_range_is_refused_with_the_range_said(name: str) -> None:
    low, high = RANGES[name]
    for edge in (low, high):
        assert getattr(Settings(**{name: edge}), name) == edge
    for outside in (low - 1, high + 1):
        with pytest.raises(SettingsError) as refused:
            Settings(**{name: outside})
        assert str(refused.value) == (
            f"{name} must be a number from {low} to {high}, not {outside!r}"
        )
