"""Test-wide set-up: Qt runs offscreen, nothing touches the user's real data folder."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# The real HTTP server fixture (`http_server`) for every test.
pytest_plugins = ["tests.httpservers", "tests.s3server", "tests.services_pg"]
pytest_plugins += ["tests.services_redis"]  # the cluster tests' private Redis
