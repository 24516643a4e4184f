"""Settings → Processing: where requests are processed, this computer or a cluster (SPEC 11).

The choice belongs to this computer, like the window's layout: it is kept in QSettings, and
a password inside a URL goes to the system keyring, never into the settings file.
``IMGDESK_DATABASE_URL`` / ``IMGDESK_BROKER_URL`` (and ``--database`` / ``--broker``) win
over it. "Test connection" connects to both services off the GUI thread and says in one
sentence what is wrong. Switching takes effect when the dialog is accepted: the window
restarts itself on the new choice (:mod:`imgdesk.gui.app`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from PySide6.QtCore import QObject, QSettings, QThreadPool, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from imgdesk.core.errors import ImdeskError, SettingsError
from imgdesk.core.redact import redact_url
from imgdesk.core.secrets import load_secret, save_secret
from imgdesk.gui.loading import BackgroundTask, TaskRelay
from imgdesk.gui.widgets import named

logger = logging.getLogger(__name__)

LOCAL, CLUSTER = "local", "cluster"
DATABASE_ENV, BROKER_ENV = "IMGDESK_DATABASE_URL", "IMGDESK_BROKER_URL"
_KEYS = {key: f"processing/{key}" for key in ("mode", "database", "broker")}
CHECK_TIMEOUT_S = 5
ERROR_STYLE = "color: #b91c1c;"
OK_STYLE = "color: #15803d;"
LOCAL_TEXT = (
    "This computer: the window downloads and compresses the pictures itself and keeps "
    "everything in its data folder. Nothing else is needed."
)
CLUSTER_TEXT = (
    "Cluster: requests go to a shared PostgreSQL database and their pictures to imgdesk "
    "worker processes through a Redis broker (see docs/cluster.md). The window lists every "
    "request of the cluster, from any machine; closing it stops no work."
)


@dataclass(frozen=True)
class ProcessingPlace:
    """Where requests are processed: ``local``, or ``cluster`` with its two URLs."""

    mode: str = LOCAL
    database_url: str = ""
    broker_url: str = ""

    @property
    def is_cluster(self) -> bool:
        """True for the cluster."""
        return self.mode == CLUSTER


def split_password(url: str) -> tuple[str, str]:
    """The URL without its password, and the password ("" when it has none)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url, ""
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}")), parts.password


def with_password(url: str, password: str) -> str:
    """``url`` with ``password`` put back after its user (one already in it is replaced)."""
    if not password:
        return url
    url = split_password(url)[0]
    parts = urlsplit(url)
    user, host = parts.netloc.rsplit("@", 1) if "@" in parts.netloc else ("", parts.netloc)
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


def _keyring_name(url: str) -> str:
    return f"cluster {url}"


class ProcessingChoice(QObject):
    """This computer's choice of where to process, kept in ``qsettings``.

    Signals:
        changed(): a different choice was saved (the window restarts on it).
    """

    changed = Signal()

    def __init__(self, qsettings: QSettings, parent: QObject | None = None) -> None:
        """Read and write the choice in ``qsettings``."""
        super().__init__(parent)
        self.setObjectName("processing_choice")
        self._qsettings = qsettings

    def saved(self) -> ProcessingPlace:
        """The saved choice, passwords back from the keyring."""
        mode = str(self._qsettings.value(_KEYS["mode"], LOCAL) or LOCAL)
        urls = []
        for key in ("database", "broker"):
            url = str(self._qsettings.value(_KEYS[key], "") or "")
            urls.append(with_password(url, load_secret(_keyring_name(url)) or "") if url else "")
        return ProcessingPlace(CLUSTER if mode == CLUSTER else LOCAL, urls[0], urls[1])

    def save(self, place: ProcessingPlace) -> None:
        """Keep ``place``; passwords go to the keyring (SettingsError: it cannot keep them)."""
        if place == self.saved():
            return  # nothing to write: the settings file stays as it is
        for key, url in (("database", place.database_url), ("broker", place.broker_url)):
            bare, password = split_password(url)
            if password:
                save_secret(_keyring_name(bare), password)
            self._qsettings.setValue(_KEYS[key], bare)
        self._qsettings.setValue(_KEYS["mode"], place.mode)
        self._qsettings.sync()
        logger.info("processing on %s from now on", place.mode)
        self.changed.emit()

    def in_use(
        self,
        environment: Mapping[str, str] | None = None,
        database_url: str | None = None,
        broker_url: str | None = None,
    ) -> ProcessingPlace:
        """The place to use: ``--database``/``--broker``, else the environment, else saved."""
        env = os.environ if environment is None else environment
        database = database_url or env.get(DATABASE_ENV, "")
        broker = broker_url or env.get(BROKER_ENV, "")
        if database or broker:
            return ProcessingPlace(CLUSTER, database, broker)
        return self.saved()


def check_cluster(database_url: str, broker_url: str) -> str:
    """Connect to both services; what works, in one sentence (ImdeskError: what does not)."""
    from imgdesk.core import db_postgres

    if not db_postgres.is_postgres_url(database_url):
        raise SettingsError("The database must be a PostgreSQL URL: postgresql://USER@HOST/NAME.")
    if not broker_url.startswith(("redis://", "rediss://")):
        raise SettingsError("The broker must be a Redis URL: redis://HOST:6379/0.")
    db_postgres.connect(database_url).close()
    try:
        import redis
    except ImportError:
        raise SettingsError(
            'The cluster needs the redis package: pip install "imgdesk[cluster]".'
        ) from None
    client = redis.Redis.from_url(broker_url, socket_connect_timeout=CHECK_TIMEOUT_S)
    try:
        client.ping()
    except redis.AuthenticationError as error:
        raise SettingsError(
            f"Redis at {redact_url(broker_url)} refused the password ({error})."
        ) from None
    except redis.RedisError as error:
        raise SettingsError(
            f"imgdesk cannot reach Redis at {redact_url(broker_url)} ({error})."
        ) from None
    finally:
        client.close()
    return f"Both answer: PostgreSQL at {db_postgres.where(database_url)} and Redis."


class ProcessingPlaceBox(QGroupBox):
    """The "Process on" group of Settings → Processing; :meth:`keep` saves it on OK."""

    def __init__(self, choice: ProcessingChoice, parent: QWidget | None = None) -> None:
        """Show the saved choice of ``choice``."""
        super().__init__("Process on", parent)
        self.setObjectName("processing_place")
        self._choice = choice
        self._pool = QThreadPool(self)
        self._relay = TaskRelay(self)
        self._relay.succeeded.connect(self._on_test_succeeded)
        self._relay.failed.connect(self._on_test_failed)
        self._test_id = 0
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self._local = named(QRadioButton("This computer"), "local")
        self._cluster = named(QRadioButton("Cluster"), "cluster")
        group = QButtonGroup(self)
        for button in (self._local, self._cluster):
            group.addButton(button)
            row.addWidget(button)
            button.toggled.connect(self._update)
        row.addStretch()
        layout.addLayout(row)
        self._meaning = named(QLabel(f"{LOCAL_TEXT}\n{CLUSTER_TEXT}"), "meaning")
        self._meaning.setWordWrap(True)
        layout.addWidget(self._meaning)
        form = QFormLayout()
        self._database = named(QLineEdit(), "database_url")
        self._database.setPlaceholderText("postgresql://imgdesk@db.lan/imgdesk")
        self._database_password = _password_field("database_password")
        self._broker = named(QLineEdit(), "broker_url")
        self._broker.setPlaceholderText("redis://queue.lan:6379/0")
        self._broker_password = _password_field("broker_password")
        form.addRow("Database URL", self._database)
        form.addRow("Its password", self._database_password)
        form.addRow("Broker URL", self._broker)
        form.addRow("Its password", self._broker_password)
        layout.addLayout(form)
        test_row = QHBoxLayout()
        self._test = named(QPushButton("Test connection"), "test_cluster")
        self._test.clicked.connect(self._on_test_clicked)
        test_row.addWidget(self._test)
        test_row.addStretch()
        layout.addLayout(test_row)
        self._result = named(QLabel(), "test_result")
        self._result.setWordWrap(True)
        layout.addWidget(self._result)
        self._override = named(QLabel(), "override")
        self._override.setWordWrap(True)
        layout.addWidget(self._override)
        self._show(choice.saved())

    def place(self) -> ProcessingPlace:
        """The choice as typed."""
        mode = CLUSTER if self._cluster.isChecked() else LOCAL
        urls = [
            with_password(url.text().strip(), password.text()) if url.text().strip() else ""
            for url, password in (
                (self._database, self._database_password),
                (self._broker, self._broker_password),
            )
        ]
        return ProcessingPlace(mode, urls[0], urls[1])

    def keep(self) -> None:
        """Save the choice (SettingsError: a cluster without both URLs, or no keyring)."""
        place = self.place()
        if place.is_cluster and not (place.database_url and place.broker_url):
            raise SettingsError("The cluster needs both a database URL and a broker URL.")
        self._choice.save(place)

    def _show(self, place: ProcessingPlace) -> None:
        (self._cluster if place.is_cluster else self._local).setChecked(True)
        for url, field, password in (
            (place.database_url, self._database, self._database_password),
            (place.broker_url, self._broker, self._broker_password),
        ):
            bare, secret = split_password(url)
            field.setText(bare)
            password.setText(secret)
        names = [name for name in (DATABASE_ENV, BROKER_ENV) if os.environ.get(name)]
        self._override.setText(
            f"{' and '.join(names)} {'is' if len(names) == 1 else 'are'} set: "
            "that cluster is used whatever is chosen here."
            if names
            else ""
        )
        self._override.setVisible(bool(names))
        self._update()

    def _update(self) -> None:
        cluster = self._cluster.isChecked()
        fields = (self._database, self._database_password, self._broker, self._broker_password)
        for widget in (*fields, self._test):
            widget.setEnabled(cluster)

    def _on_test_clicked(self) -> None:
        self._test_id += 1
        place = self.place()
        self._result.setStyleSheet("")
        self._result.setText("Connecting…")
        task = BackgroundTask(
            self._relay, self._test_id, check_cluster, place.database_url, place.broker_url
        )
        self._pool.start(task)

    def _on_test_succeeded(self, task_id: int, text: object) -> None:
        if task_id == self._test_id:
            self._result.setStyleSheet(OK_STYLE)
            self._result.setText(str(text))

    def _on_test_failed(self, task_id: int, error: object) -> None:
        if task_id != self._test_id:
            return
        if not isinstance(error, ImdeskError):
            logger.error("the cluster test failed unexpectedly: %r", error)
        self._result.setStyleSheet(ERROR_STYLE)
        self._result.setText(str(error) if isinstance(error, ImdeskError) else repr(error))


def _password_field(name: str) -> QLineEdit:
    """A masked field for the password of a URL (kept in the keyring, never in a file)."""
    field = named(QLineEdit(), name)
    field.setEchoMode(QLineEdit.EchoMode.Password)
    field.setPlaceholderText("none, or the one in the URL")
    return field


def add_place_box(form: QFormLayout, window: QWidget | None) -> ProcessingPlaceBox:
    """Add the group to a settings dialog's form; it keeps the choice of ``window``.

    The window's :class:`ProcessingChoice` is its child (see :mod:`imgdesk.gui.app`); a
    dialog without one keeps the choice in the application's QSettings.
    """
    choice = window.findChild(ProcessingChoice) if window is not None else None
    if choice is None:
        choice = ProcessingChoice(QSettings(), window)
    box = ProcessingPlaceBox(choice)
    form.addRow(box)
    return box
