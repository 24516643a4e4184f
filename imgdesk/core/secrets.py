"""The S3 secret key the window uses, kept in the system keyring and nowhere else.

Never in the database, a settings file or the log: the settings hold only the access key
id, and the secret is looked up under it. The command line does not use this; it takes the
standard AWS sources (environment, profile), as SPEC 10 says.
"""

from __future__ import annotations

import contextlib
import logging
import os

import keyring
import keyring.errors

from imgdesk.core.errors import SettingsError

logger = logging.getLogger(__name__)

KEYRING_SERVICE = "imgdesk S3"
# keyring's convention: a backend of priority 1 or more keeps secrets safely; lower ones are
# fallbacks (a plain file, or none). Those are used only when asked for by name.
_SAFE_PRIORITY = 1.0


def _backend() -> keyring.backend.KeyringBackend:
    """The system keyring, or SettingsError when this computer has none that is safe."""
    backend = keyring.get_keyring()
    chosen = bool(os.environ.get("PYTHON_KEYRING_BACKEND"))  # configured by name: trusted
    if not chosen and getattr(backend, "priority", 0) < _SAFE_PRIORITY:
        raise SettingsError(
            "This computer has no system keyring (such as GNOME Keyring, KWallet, the macOS "
            "Keychain or the Windows Credential Manager) to keep the secret key in. Leave the "
            "access key empty and set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or "
            "AWS_PROFILE) before starting imgdesk instead."
        )
    return backend


def keyring_problem() -> str | None:
    """Why no secret can be kept on this computer, in a sentence; None when one can."""
    try:
        _backend()
    except SettingsError as error:
        return str(error)
    return None


def save_secret(access_key_id: str, secret: str) -> None:
    """Keep ``secret`` in the keyring under ``access_key_id``.

    Raises:
        SettingsError: there is no safe keyring, or it refused; the sentence says what to do.
    """
    backend = _backend()
    try:
        backend.set_password(KEYRING_SERVICE, access_key_id, secret)
    except keyring.errors.KeyringError as error:
        raise SettingsError(f"The system keyring refused to keep the secret key: {error}") from None
    logger.info("S3 secret key for %s kept in the system keyring", access_key_id)


def load_secret(access_key_id: str) -> str | None:
    """The secret kept for ``access_key_id``; None when there is none or no keyring."""
    if not access_key_id:
        return None
    try:
        return _backend().get_password(KEYRING_SERVICE, access_key_id)
    except (SettingsError, keyring.errors.KeyringError) as error:
        logger.warning("no S3 secret key from the keyring: %s", error)
        return None


def forget_secret(access_key_id: str) -> None:
    """Remove the secret kept for ``access_key_id``, if any."""
    # Nothing kept, or no keyring: nothing to forget.
    with contextlib.suppress(SettingsError, keyring.errors.KeyringError):
        _backend().delete_password(KEYRING_SERVICE, access_key_id)
