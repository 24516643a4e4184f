"""Run by test_disk_full.py in a private mount namespace, with ``images/`` a tiny tmpfs.

Fills the tmpfs, processes a request, frees the space once the engine holds the request,
and prints what it saw as one JSON object.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QTimer

from imgdesk.core.csvio import parse_catalogue
from imgdesk.core.db import open_database
from imgdesk.core.repository import Repository
from imgdesk.core.storage import request_folder
from imgdesk.engine.engine import Engine
from tests import images
from tests.engine.conftest import FAST, csv_bytes
from tests.httpservers import respond, running_server


def main(data_dir: Path, free_bytes: int) -> None:
    app = QCoreApplication([])
    open_database(data_dir / "imgdesk.sqlite3")
    repo = Repository()
    filler = data_dir / "images" / "filler.bin"
    seen: dict[str, object] = {"held": []}
    with running_server() as server:
        rows = [
            (str(i), f"P{i}", [server.route(f"/p{i}.jpg", respond(images.make_jpeg(400, 300)))])
            for i in range(1, 25)
        ]
        request_id = repo.create_request(parse_catalogue(csv_bytes(rows), "p.csv"))
        folder = request_folder(data_dir, request_id)
        folder.mkdir(parents=True)
        total = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
        filler.write_bytes(b"\0" * (total - free_bytes))
        engine = Engine(repo, FAST.replace(concurrency=1), data_dir)

        def on_held(rid: str, message: str) -> None:
            if not message:
                return
            images_now = repo.list_images(rid)
            request = repo.get_request(rid)
            assert request is not None
            seen["held"].append(  # type: ignore[attr-defined]
                {
                    "message": message,
                    "request_error": request.error,
                    "storage_failed": sum(i.error_code == "storage" for i in images_now),
                    "other_failed": sum(
                        i.status == "failed" and i.error_code != "storage" for i in images_now
                    ),
                    "done": sum(i.status == "done" for i in images_now),
                    "files": sorted(p.name for p in folder.iterdir()),
                }
            )
            # The user makes room; the engine must notice by itself.
            QTimer.singleShot(300, lambda: filler.unlink())

        def on_finished(rid: str, status: str) -> None:
            seen["status"] = status
            seen["done"] = sum(i.status == "done" for i in repo.list_images(rid))
            seen["files"] = len([p for p in folder.iterdir() if p.suffix == ".jpg"])
            app.quit()

        engine.request_held.connect(on_held)
        engine.request_finished.connect(on_finished)
        engine.start_request(request_id)
        QTimer.singleShot(30_000, app.quit)
        app.exec()
        engine.shutdown()
    print(json.dumps(seen))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
