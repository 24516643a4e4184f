"""Processing settings: one frozen dataclass, every default in one place.

The settings are stored in the database (see :mod:`imgdesk.core.repository`) so that the
command line and the window always see the same values. Their ``output`` is only the default
for new requests: each request keeps the :class:`OutputSettings` it was created with.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from imgdesk.core.errors import SettingsError
from imgdesk.core.output import OutputSettings
from imgdesk.core.storage_choice import StorageChoice

MIB = 1024 * 1024

# Types imgdesk can decode safely; the user may allow a subset or add these back.
KNOWN_INPUT_TYPES = (
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
    "image/bmp",
    "image/tiff",
)

# The lowest and highest value of each number of the settings (checked when Settings are made).
RANGES: dict[str, tuple[float, float]] = {
    "concurrency": (1, 64),
    "per_host_concurrency": (1, 64),
    "max_download_bytes": (1024, 1024 * MIB),
    "max_retries": (0, 20),
    "retry_base_delay_s": (0.0, 600.0),
    "retry_after_cap_s": (0.0, 3600.0),
    "connect_timeout_s": (0.1, 600.0),
    "read_timeout_s": (0.1, 600.0),
    "total_timeout_s": (0.1, 3600.0),
    "low_speed_bytes_per_s": (0, 10 * MIB),
    "low_speed_window_s": (1.0, 600.0),
    "max_redirects": (0, 30),
    # Pillow treats more than ~89.5 MP as a bomb warning, which imgdesk makes an error.
    "max_pixels": (1, 89_478_485),
    "webhook_retries": (0, 20),
    "webhook_first_delay_ms": (0, 3_600_000),
    "retention_days": (0, 36500),
}


@dataclass(frozen=True)
class Settings:
    """Everything that shapes how images are fetched, compressed, stored and announced."""

    concurrency: int = 5
    per_host_concurrency: int = 5
    # What requests added from now on will write (format, quality, sizes); see SPEC 9.
    output: OutputSettings = field(default_factory=OutputSettings)
    # Where requests added from now on store their outputs (SPEC 10); each request keeps its own.
    storage: StorageChoice = field(default_factory=StorageChoice)
    # The S3 access key the window uses (its secret is in the system keyring, never here);
    # "" takes the standard AWS sources (environment, profile).
    s3_access_key_id: str = ""
    max_download_bytes: int = 10 * MIB
    allowed_types: tuple[str, ...] = ("image/jpeg", "image/png")
    max_retries: int = 3
    retry_base_delay_s: float = 1.0
    retry_after_cap_s: float = 60.0
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 30.0
    total_timeout_s: float = 120.0
    # The low-speed limit (curl's --speed-limit): a body averaging under this many bytes a
    # second over the window ends the attempt with `timeout`; 0 turns it off.
    low_speed_bytes_per_s: int = 1024
    low_speed_window_s: float = 30.0
    max_redirects: int = 5
    max_pixels: int = 89_478_485  # Pillow's own default bomb limit (~ 9459 x 9459)
    block_private_addresses: bool = False
    public_base_url: str = ""
    webhook_url: str = ""
    webhook_secret: str = ""
    webhook_retries: int = 3
    webhook_first_delay_ms: int = 1000
    neutralise_formulas: bool = True
    # SQLite synchronous=FULL: a power cut cannot lose the last stored results (slower).
    power_safe_writes: bool = False
    # Remove the stored files of requests finished more than this many days ago when a
    # processing front starts (imgdesk.core.retention); 0 keeps them forever.
    retention_days: int = 0
    user_agent: str = field(default="imgdesk/0.1 (+product image downloader)")

    def __post_init__(self) -> None:
        for name, (low, high) in RANGES.items():
            _check_range(name, getattr(self, name), low, high)
        if not isinstance(self.output, OutputSettings):
            raise SettingsError(f"output must be output settings, not {self.output!r}")
        if not isinstance(self.storage, StorageChoice):
            raise SettingsError(f"storage must be a storage choice, not {self.storage!r}")
        unknown = [t for t in self.allowed_types if t not in KNOWN_INPUT_TYPES]
        if unknown or not self.allowed_types:
            raise SettingsError(
                f"allowed_types must be a non-empty choice of {', '.join(KNOWN_INPUT_TYPES)}"
                + (f"; unknown: {', '.join(unknown)}" if unknown else "")
            )
        for name in ("public_base_url", "webhook_url"):
            value = getattr(self, name)
            if value:
                check_http_url(value, name)

    def output_key(self, output: OutputSettings) -> str:
        """What shapes an output made with ``output``: a stored one is reused only under it.

        The decoding limits count too: an image refused under these settings must not come
        back from an earlier run's outputs.
        """
        types = "+".join(sorted(self.allowed_types))
        return f"v3;{output.key};px={self.max_pixels};types={types}"

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (validated like the original)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (``output`` and ``storage`` as nested objects)."""
        data = dataclasses.asdict(self)
        data["allowed_types"] = list(self.allowed_types)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        """Build from stored values; unknown keys are ignored, missing ones take defaults.

        Settings stored before output formats existed have a ``jpeg_quality``: it becomes
        the quality of the default output.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in names:
                continue
            if key == "allowed_types":
                value = tuple(value)
            elif key == "output":
                value = OutputSettings.from_dict(value)
            elif key == "storage":
                value = StorageChoice.from_dict(value)
            kwargs[key] = value
        if "output" not in kwargs and "jpeg_quality" in data:
            kwargs["output"] = OutputSettings(quality=data["jpeg_quality"])
        return cls(**kwargs)


def check_http_url(value: str, name: str) -> None:
    """Raise :class:`SettingsError` unless ``value`` is an absolute http(s) URL."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(f"{name} must be an absolute http:// or https:// URL, not {value!r}")


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise SettingsError(f"{name} must be a number from {low} to {high}, not {value!r}")
