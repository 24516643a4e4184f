"""Worker processes: each a Dramatiq ``Worker`` with its threads, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
from types import FrameType

import dramatiq

from imgdesk.cluster.actors import ClusterActors, WorkerConfig, WorkerContext
from imgdesk.cluster.broker import make_broker
from imgdesk.core.cluster_store import open_shared_database
from imgdesk.core.errors import ImdeskError
from imgdesk.core.logs import setup_logging
from imgdesk.core.redact import RedactingFilter

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# How long a stopping worker lets the images it is on finish; the rest are redelivered.
STOP_TIMEOUT_MS = 30_000
# A child process checks this often that its parent (``imgdesk worker``) is still there.
PARENT_CHECK_S = 1.0


def log_to_stderr(verbose: bool) -> None:
    """One line per image on stderr (the file log has everything)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s imgdesk worker %(process)d: %(message)s"))
    handler.addFilter(RedactingFilter())
    handler.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("imgdesk.cluster").addHandler(handler)


def connect(config: WorkerConfig) -> ClusterActors:
    """Open the database and the broker and declare the actors, as one worker process does.

    Raises:
        ImdeskError: the database or the broker cannot be used (one sentence).
    """
    open_shared_database(config.database_url)
    broker = make_broker(config.broker_url, config.heartbeat_timeout_s)
    return ClusterActors(broker, WorkerContext(broker, config.data_dir, config.storage))


def serve(config: WorkerConfig, actors: ClusterActors, watch_parent: bool = False) -> None:
    """Work on messages until a stop signal (or, in a child, until the parent is gone)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            os._exit(128 + signum)  # a second Ctrl-C while stopping: at once
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    # A child leaves Ctrl-C to its parent, which stops every child with SIGTERM.
    signal.signal(signal.SIGINT, signal.SIG_IGN if watch_parent else on_signal)
    owed = actors.resend_owed_webhooks()
    if owed:
        logger.info("sent %s webhook deliveries still owed", owed)
    worker = dramatiq.Worker(actors.process.broker, worker_threads=config.threads)
    worker.start()
    logger.info("worker %s started with %s threads", os.getpid(), config.threads)
    parent = os.getppid()
    while not stop.wait(PARENT_CHECK_S):
        if watch_parent and os.getppid() != parent:
            logger.warning("imgdesk worker (process %s) is gone; stopping", parent)
            break
    logger.info("worker %s stopping: the images in flight finish, the rest go back", os.getpid())
    worker.stop(timeout=STOP_TIMEOUT_MS)
    logger.info("worker %s stopped", os.getpid())


def _child_main(config: WorkerConfig) -> None:
    """One child process of ``imgdesk worker --processes N``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent turns Ctrl-C into SIGTERM
    setup_logging(config.data_dir, verbose=config.verbose)
    log_to_stderr(config.verbose)
    try:
        actors = connect(config)
    except ImdeskError as error:
        print(f"imgdesk: {error}", file=sys.stderr)
        sys.exit(2)
    serve(config, actors, watch_parent=True)


def run_processes(config: WorkerConfig, processes: int) -> int:
    """Start ``processes`` worker processes and stop them all on SIGTERM or Ctrl-C.

    Returns 0 after a clean stop, 1 when every child ended by itself (it says why).
    """
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for signum in STOP_SIGNALS:
        signal.signal(signum, on_signal)
    spawn = multiprocessing.get_context("spawn")
    children = [
        spawn.Process(target=_child_main, args=(config,), name=f"imgdesk-worker-{number}")
        for number in range(1, processes + 1)
    ]
    for child in children:
        child.start()
    while not stop.wait(PARENT_CHECK_S):
        if not any(child.is_alive() for child in children):
            logger.error("every worker process ended; see the log")
            return 1
    for child in children:
        if child.pid is not None and child.is_alive():
            os.kill(child.pid, signal.SIGTERM)
    for child in children:
        child.join()
    return 0
