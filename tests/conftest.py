"""Test-wide set-up: Qt runs offscreen, nothing touches the user's real data folder."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
