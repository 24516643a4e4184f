"""``imgdesk status``: every request, or one request's images and webhook deliveries."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from imgdesk.cli.commands import find_request
from imgdesk.cli.console import (
    EXIT_COMPLETED,
    EXIT_REJECTED,
    iso_time,
    shown_text,
    shown_webhook_text,
)
from imgdesk.core.outbox import DeliveryInfo, Outbox
from imgdesk.core.records import NORMAL
from imgdesk.core.redact import redact_url
from imgdesk.core.repository import ImageInfo, Repository, RequestInfo


def cmd_status(options: argparse.Namespace, repo: Repository, data_dir: Path) -> int:
    """List the requests, or show one in detail; text, or JSON with ``--json``."""
    out = sys.stdout
    if options.request_id is None:
        _write_request_list(out, repo.list_requests(), options.json)
        return EXIT_COMPLETED
    request = find_request(repo, options.request_id)
    if request is None:
        return EXIT_REJECTED
    images = repo.list_images(request.id)
    deliveries = Outbox().list_deliveries(request.id)
    if options.json:
        out.write(json.dumps(_request_detail_json(request, images, deliveries)) + "\n")
    else:
        _write_request_detail(out, request, images, deliveries)
    return EXIT_COMPLETED


def _write_request_list(out: TextIO, requests: list[RequestInfo], as_json: bool) -> None:
    if as_json:
        for request in requests:
            out.write(json.dumps(_request_json(request)) + "\n")
        return
    if not requests:
        out.write("No requests yet. Try: imgdesk process products.csv\n")
    for request in requests:
        out.write(
            f"{request.id}  {request.status:<10}  {request.done:>6} done  "
            f"{request.failed:>5} failed  {request.total:>6} total  "
            f"{iso_time(request.created_at)}  {request.csv_name}{_priority_note(request)}\n"
        )


def _priority_note(request: RequestInfo) -> str:
    """``  (high priority)`` after a listed request, nothing for a normal one."""
    return "" if request.priority == NORMAL else f"  ({request.priority} priority)"


def _request_json(request: RequestInfo) -> dict[str, Any]:
    return {
        "request_id": request.id,
        "csv_name": request.csv_name,
        "status": request.status,
        "priority": request.priority,
        "error": shown_text(request.error),
        "total_images": request.total,
        "succeeded": request.done,
        "failed": request.failed,
        "created_at": iso_time(request.created_at),
        "finished_at": iso_time(request.finished_at) if request.finished_at else None,
        "output_csv": request.output_csv,
        "output_settings": request.output.to_dict(),
        "storage": request.storage.to_dict(),
        "files_removed_at": (
            iso_time(request.files_removed_at) if request.files_removed_at is not None else None
        ),
    }


def _request_detail_json(
    request: RequestInfo, images: list[ImageInfo], deliveries: list[DeliveryInfo]
) -> dict[str, Any]:
    payload = _request_json(request)
    payload["webhook_deliveries"] = [
        {
            "webhook_id": delivery.id,
            "event": delivery.event,
            "status": delivery.status,
            "attempts": [
                {
                    "at": iso_time(attempt.attempted_at),
                    "status_code": attempt.status_code,
                    "error": shown_webhook_text(attempt.error),
                    "duration_ms": attempt.duration_ms,
                }
                for attempt in delivery.history
            ],
        }
        for delivery in deliveries
    ]
    payload["images"] = [
        {
            "serial": image.serial,
            "product": image.product_name,
            "position": image.position,
            "url": redact_url(image.url),
            "status": image.status,
            "attempts": image.attempts,
            "error_code": image.error_code,
            "error": shown_text(image.error),
            "http_status": image.http_status,
            "input_bytes": image.input_bytes,
            "output_bytes": image.output_bytes,
            "output_url": image.output_url,
            "output_format": image.output_format,
            "note": image.note,
        }
        for image in images
    ]
    return payload


def _write_request_detail(
    out: TextIO, request: RequestInfo, images: list[ImageInfo], deliveries: list[DeliveryInfo]
) -> None:
    out.write(
        f"request   {request.id}\ncsv       {request.csv_name}\nstatus    {request.status}"
        + (f" ({shown_text(request.error)})" if request.error else "")
        + f"\nimages    {request.done} done, {request.failed} failed, {request.total} total\n"
        f"created   {iso_time(request.created_at)}\n"
        f"settings  {request.output.describe()}\n"
        f"storage   {request.storage.describe()}\n"
    )
    if request.priority != NORMAL:
        out.write(f"priority  {request.priority}\n")
    if request.files_removed_at is not None:
        # imgdesk cleanup removed them: the rows below stay, their files do not.
        out.write(f"files     removed on {iso_time(request.files_removed_at)}\n")
    if request.output_csv:
        out.write(f"output    {request.output_csv}\n")
    for delivery in deliveries:
        out.write(f"webhook   {delivery.event} {delivery.status} ({delivery.id})\n")
        for attempt in delivery.history:
            answer = shown_webhook_text(attempt.error) or f"HTTP {attempt.status_code}"
            out.write(
                f"          {iso_time(attempt.attempted_at)}  {answer}  {attempt.duration_ms} ms\n"
            )
    out.write("\n")
    for image in images:
        problem = f"  {image.error_code}: {shown_text(image.error)}" if image.error_code else ""
        # e.g. "(kept_original)": what a person should know about the output.
        note = f"  ({image.note.replace(',', ', ')})" if image.note else ""
        out.write(
            f"{image.serial:>6} #{image.position:<2} {image.status:<11} "
            f"{redact_url(image.url)}{note}{problem}\n"
        )
