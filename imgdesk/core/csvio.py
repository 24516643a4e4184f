"""Read product catalogues from CSV and write them back with the output image URLs.

The input contract is SPEC section 1, the output contract SPEC section 4. Reading is strict
about the whole file (a file we cannot trust is rejected with :class:`CsvFileError`, naming
the problem and the line) and lenient about single rows: a bad row is kept, with its
problems in words, so the user can decide whether to go on with the valid rows.

Cells are parsed the way Excel and RFC 4180 do it: fields are quoted with ``"``, a quote
inside a quoted field is doubled, and a space after a delimiter belongs to the cell.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

from imgdesk.core.errors import CsvFileError
from imgdesk.core.storage import atomic_file

logger = logging.getLogger(__name__)

OUTPUT_COLUMN = "Output Image Urls"

SERIAL_COLUMN = "S. No."
NAME_COLUMN = "Product Name"
URLS_COLUMN = "Input Image Urls"

# Normalised header spellings accepted for each required column (see normalise_header).
_SERIAL_KEYS = frozenset({"sno", "srno", "slno", "serialno", "serialnumber"})
_NAME_KEYS = frozenset({"productname"})
_URLS_KEYS = frozenset({"inputimageurls", "inputimageurl"})
_OUTPUT_KEYS = frozenset({"outputimageurls", "outputimageurl"})
_REQUIRED: tuple[tuple[str, frozenset[str]], ...] = (
    (SERIAL_COLUMN, _SERIAL_KEYS),
    (NAME_COLUMN, _NAME_KEYS),
    (URLS_COLUMN, _URLS_KEYS),
)

# Comma first: on a tie (which needs a one-column header) it is the likeliest.
_DELIMITERS = (",", ";", "\t")

# Byte-order marks, longest first: the UTF-32 LE mark starts with the UTF-16 LE one.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

_EXCEL_HINT = "In Excel, use File > Save As > CSV UTF-8 (Comma delimited) and load that file."
# File signatures of things people rename to .csv by mistake; the bool says "from Excel".
_SIGNATURES: tuple[tuple[bytes, str, bool], ...] = (
    (b"PK\x03\x04", "an Excel workbook (.xlsx) or another zip archive", True),
    (b"PK\x05\x06", "an Excel workbook (.xlsx) or another zip archive", True),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Excel workbook (.xls)", True),
    (b"%PDF-", "a PDF document", False),
    (b"\x89PNG\r\n\x1a\n", "a PNG image", False),
    (b"\xff\xd8\xff", "a JPEG image", False),
    (b"GIF87a", "a GIF image", False),
    (b"GIF89a", "a GIF image", False),
)

# Compiled once: split_urls and is_http_url run for every row.
_QUOTE_CHARS = "\"'`\u201c\u201d\u2018\u2019<>"
# One piece of a URL cell: either a URL (optionally quoted) that runs on through every
# "," or ";" not followed by whitespace, another separator or a new scheme://, or any other
# run of text between separators. Possessive quantifiers keep it linear.
_SCHEME = rf"[{_QUOTE_CHARS}]*[A-Za-z][A-Za-z0-9+.\-]*://"
_URL_PIECE = re.compile(rf"{_SCHEME}(?:[^\s,;]++|[,;](?=[^\s,;])(?!{_SCHEME}))*+|[^\s,;]++")
_BAD_URL_CHARS = re.compile(r"[\s\x00-\x1f\x7f]")
# The common case, http(s)://host/path with a plain host, checked without urlsplit (which
# costs several microseconds a URL). Everything it accepts, the full check accepts too.
_PLAIN_HTTP_URL = re.compile(
    r"(?i:https?)://[A-Za-z0-9.\-_~%!$&'()*+,;=]+(?:[/?#][^\s\x00-\x1f\x7f]*)?"
)
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

_MAX_QUOTED_URL = 80
# Bounds that keep memory in check (a row costs about 1 KB once parsed); past them the file is
# refused with a message saying so, before anything is queued.
MAX_ROWS = 200_000
MAX_FILE_BYTES = 200 * 1024 * 1024
_HEADER_PROBE_CHARS = 1 << 16
# A file of nothing but these (blank lines, lone delimiters) has no header to find.
_EMPTY_CHARS = ' \t\r\n,;"\ufeff'
_EMPTY_MESSAGE = "The file is empty: it has no header row and no products."
_UNCLOSED_QUOTE = (
    "A quoted cell in the row starting on this line is never closed (a double quote is "
    "missing), so the rest of the file would be read as one cell."
)


@dataclass(frozen=True, slots=True)
class CatalogueRow:
    """One data row of the input CSV, valid or not.

    Attributes:
        index: 0-based position among the data rows, in input order (blank lines skipped).
        line: 1-based physical line of the file where the row starts.
        cells: every cell as read, padded with "" to the header's length; extra cells kept.
        serial: the S. No., stripped.
        product_name: the product name, stripped.
        urls: the image URLs in input order (also for an invalid row: what could be split).
        problems: what is wrong with the row, one sentence each; empty when it is valid.
    """

    index: int
    line: int
    cells: tuple[str, ...]
    serial: str
    product_name: str
    urls: tuple[str, ...]
    problems: tuple[str, ...]

    @property
    def valid(self) -> bool:
        """True when the row has no problems and can be processed."""
        return not self.problems


@dataclass(frozen=True, slots=True)
class Catalogue:
    """A parsed input CSV: everything needed to process it and to write the output back.

    Attributes:
        name: the file name shown to users.
        header: the header cells, spelled as in the file.
        delimiter: the cell delimiter, ``,`` ``;`` or a tab.
        encoding: the codec the file was read with ("utf-8", "utf-8-sig", "cp1252", ...).
        warnings: sentences about the whole file the user should see (e.g. cp1252 fallback).
        rows: every non-blank data row in input order.
        serial_column: index of the S. No. column.
        name_column: index of the Product Name column.
        urls_column: index of the Input Image Urls column.
        output_column: index of an "Output Image Urls" column already in the input, if any.
    """

    name: str
    header: tuple[str, ...]
    delimiter: str
    encoding: str
    warnings: tuple[str, ...]
    rows: tuple[CatalogueRow, ...]
    serial_column: int
    name_column: int
    urls_column: int
    output_column: int | None

    @property
    def valid_rows(self) -> tuple[CatalogueRow, ...]:
        """The rows without problems, in input order."""
        return tuple(row for row in self.rows if row.valid)

    @property
    def invalid_rows(self) -> tuple[CatalogueRow, ...]:
        """The rows with at least one problem, in input order."""
        return tuple(row for row in self.rows if not row.valid)


@dataclass(frozen=True)
class CatalogueSummary:
    """A file once read, as the window needs it: counts and problem rows, not every row.

    The valid rows are already recorded in the database by then; a summary crosses from the
    reading process to the window in a few kilobytes instead of a 100,000-row catalogue.
    """

    name: str
    warnings: tuple[str, ...]
    row_count: int
    invalid_rows: tuple[CatalogueRow, ...]
    valid_image_count: int

    @property
    def valid_count(self) -> int:
        """How many rows can be processed."""
        return self.row_count - len(self.invalid_rows)


def summarize(catalogue: Catalogue) -> CatalogueSummary:
    """The summary of a parsed catalogue."""
    return CatalogueSummary(
        name=catalogue.name,
        warnings=catalogue.warnings,
        row_count=len(catalogue.rows),
        invalid_rows=catalogue.invalid_rows,
        valid_image_count=sum(len(row.urls) for row in catalogue.valid_rows),
    )


# Called with the file's head (a Catalogue without rows) and each run of new rows, while the
# file is still being parsed: the window records the first rows while later ones are read.
RowsCallback = Callable[["Catalogue", Sequence["CatalogueRow"]], None]


def read_catalogue(
    path: Path, on_rows: RowsCallback | None = None, chunk_rows: int = 1000
) -> Catalogue:
    """Read and validate the CSV at ``path``.

    Args:
        path: the CSV file.
        on_rows: if given, called with every ``chunk_rows`` new rows as they are parsed
            (the rows given so far may still be followed by a CsvFileError).
        chunk_rows: rows per ``on_rows`` call.

    Returns:
        The catalogue; rows with problems are included and say what is wrong.

    Raises:
        CsvFileError: the file cannot be read or is rejected as a whole.
    """
    limit_mb = MAX_FILE_BYTES // 1024 // 1024
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise CsvFileError(
                f"The file is {size / 1024 / 1024:.0f} MB; imgdesk reads CSV files of up to "
                f"{limit_mb} MB. Split it into smaller files."
            )
        # The size above is only a hint: a pipe, a device (/dev/zero) or a file still growing
        # says 0 or too little. Reading one byte past the limit is what proves it.
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise CsvFileError(f"The file {path.name} cannot be read: {exc.strerror or exc}.") from exc
    if len(data) > MAX_FILE_BYTES:
        raise CsvFileError(
            f"The file is larger than {limit_mb} MB, the most imgdesk reads in one CSV file. "
            "Split it into smaller files."
        )
    return parse_catalogue(data, path.name, on_rows, chunk_rows)


def parse_catalogue(
    data: bytes, name: str, on_rows: RowsCallback | None = None, chunk_rows: int = 1000
) -> Catalogue:
    """Parse and validate CSV bytes, exactly as :func:`read_catalogue` does for a file.

    Args:
        data: the raw file content.
        name: the file name shown to users.
        on_rows: see :func:`read_catalogue`.
        chunk_rows: see :func:`read_catalogue`.

    Returns:
        The catalogue; rows with problems are included and say what is wrong.

    Raises:
        CsvFileError: the content is rejected as a whole (not a CSV, unreadable encoding,
            empty, no data rows, missing or ambiguous required column, unclosed quote).
    """
    text, encoding, warnings = _decode(data)
    nul = text.find("\x00")
    if nul >= 0:
        raise CsvFileError(
            "This is not a CSV file: it contains binary data (a NUL byte).",
            line=text.count("\n", 0, nul) + 1,
        )

    if not text.strip(_EMPTY_CHARS):
        raise CsvFileError(_EMPTY_MESSAGE)
    delimiter = _choose_delimiter(text)
    records = _records(text, delimiter)
    header_line, header = _first_non_blank(records)
    serial_col, name_col, urls_col, output_col = _locate_columns(header, header_line)
    head = Catalogue(
        name=name,
        header=tuple(header),
        delimiter=delimiter,
        encoding=encoding,
        warnings=tuple(warnings),
        rows=(),
        serial_column=serial_col,
        name_column=name_col,
        urls_column=urls_col,
        output_column=output_col,
    )

    def on_parsed(rows: Sequence[CatalogueRow]) -> None:
        if on_rows is not None:
            on_rows(head, rows)

    rows = _parse_rows(records, header, serial_col, name_col, urls_col, on_parsed, chunk_rows)
    if not rows:
        raise CsvFileError("The file has a header but no product rows.", line=header_line)
    _check_last_record_closed(text, delimiter, rows[-1].line)

    catalogue = dataclasses.replace(head, rows=tuple(rows))
    logger.info(
        "Read %s: %d rows (%d with problems), encoding %s, delimiter %r",
        name,
        len(rows),
        len(catalogue.invalid_rows),
        encoding,
        delimiter,
    )
    return catalogue


def split_urls(cell: str) -> list[str]:
    """Split an ``Input Image Urls`` cell into URLs, keeping their order.

    URLs may be separated by whitespace (including newlines), commas or semicolons. Some
    URLs contain commas themselves (Cloudinary transformations such as ``w_100,h_100``), so
    a comma or semicolon directly followed by text only splits when that text starts a new
    URL (``scheme://``) or when the text so far is not a URL. ``a.jpg,b.jpg`` after
    ``https://host/`` therefore stays one URL; write a space after the comma, or the
    scheme, to separate them. Quotes and angle brackets around a URL are dropped, and so
    are empty pieces.

    Args:
        cell: the cell text.

    Returns:
        The URLs, unvalidated (see :func:`is_http_url`).
    """
    pieces = (piece.strip(_QUOTE_CHARS) for piece in _URL_PIECE.findall(cell))
    return [piece for piece in pieces if piece]


def is_http_url(url: str) -> bool:
    """Tell whether ``url`` is an absolute http or https URL with a host.

    Only such URLs can be fetched; anything else is a row problem found before any work
    is queued. Whitespace and control characters are refused: a browser would silently
    drop or encode them, which hides a broken spreadsheet cell.

    Args:
        url: the URL as written in the CSV.

    Returns:
        True when the URL can be fetched.
    """
    if _PLAIN_HTTP_URL.fullmatch(url):
        return True
    if _BAD_URL_CHARS.search(url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def normalise_header(cell: str) -> str:
    """Reduce a header cell to lowercase letters and digits, so ``S. No.`` becomes ``sno``.

    Spreadsheets are typed by people: case, spaces and punctuation vary, the meaning does
    not. A byte-order mark left in the first cell is dropped too.

    Args:
        cell: the header cell.

    Returns:
        The comparison key.
    """
    return "".join(char for char in cell.casefold() if char.isalnum())


def neutralise_cell(value: str) -> str:
    """Stop a spreadsheet from running a cell as a formula (OWASP "CSV Injection").

    Following OWASP, a cell whose first character is ``=`` ``+`` ``-`` ``@``, a tab or a
    carriage return gets a leading single quote, which spreadsheets read as "this is
    text". Two refinements: the check also looks past leading spaces, because some
    importers trim them and would then see the formula; and a cell that is only a number
    (``-5``, ``+1.5``, ``-2,5``) is left alone, because a number cannot run anything and a
    visible quote in front of it would damage the data. The rule is idempotent: a cell
    already starting with a quote is not changed.

    Args:
        value: the cell text.

    Returns:
        The cell, safe to open in a spreadsheet.
    """
    if not value.lstrip(" ").startswith(_FORMULA_STARTS):
        return value
    if _PLAIN_NUMBER.fullmatch(value):
        return value
    return "'" + value


def output_csv_name(csv_name: str) -> str:
    """The file name of a request's output CSV: ``<input stem>-output.csv``."""
    return f"{Path(csv_name).stem or 'products'}-output.csv"


def default_output_path(input_path: Path) -> Path:
    """Where ``imgdesk process`` writes the output CSV without ``-o``: next to the input."""
    return input_path.with_name(output_csv_name(input_path.name))


def write_output_csv(
    path: Path,
    catalogue: Catalogue,
    output_urls: Mapping[int, Sequence[str | None]],
    *,
    neutralise: bool = True,
) -> None:
    """Write the output CSV to ``path`` atomically (see :func:`write_output_rows`).

    Raises:
        ValueError: a row has more output URLs than input URLs.
        ImageError: ``storage``, when the file cannot be written (the sentence says why);
            a previous file at ``path`` is then left as it was.
    """
    with atomic_file(path) as handle:
        write_output_rows(handle, catalogue, output_urls, neutralise=neutralise)
    logger.info("Wrote %s (%d rows)", path.name, len(catalogue.rows))


def write_output_rows(
    handle: BinaryIO,
    catalogue: Catalogue,
    output_urls: Mapping[int, Sequence[str | None]],
    *,
    neutralise: bool = True,
) -> None:
    """Write the output CSV into ``handle``: the input, row for row, plus the output URLs.

    Every input column is kept in input order with the input's header spelling and
    delimiter. ``Output Image Urls`` is appended, or, when the input already had such a
    column, its cells are replaced in place. Each row's output cell lists the output URLs
    in the order of its input URLs, joined with ",": a missing (None) or absent output
    leaves its slot empty (``a,,c``) so positions stay aligned, and a row missing from
    ``output_urls`` (e.g. an invalid row) gets an empty cell.

    The file is UTF-8. It starts with a byte-order mark when the input had one (UTF-8 or
    UTF-16 with BOM) or was Windows-1252: both come from Excel, and Excel only reads
    UTF-8 correctly when the mark is there. Lines end with CRLF (RFC 4180).

    Args:
        handle: a binary file to write into (a storage's atomic output).
        catalogue: the catalogue as read.
        output_urls: row index -> output URL per input URL (None for a failed image).
        neutralise: apply :func:`neutralise_cell` to every cell, header included.

    Raises:
        ValueError: a row has more output URLs than input URLs.
        OSError: ``handle`` cannot be written.
    """
    width = len(catalogue.header)
    existing = catalogue.output_column
    header = list(catalogue.header)
    if existing is None:
        header.append(OUTPUT_COLUMN)

    def lines() -> Iterator[list[str]]:
        yield header
        for row in catalogue.rows:
            cell = _output_cell(row, output_urls.get(row.index))
            cells = list(row.cells)
            if existing is None:
                # After the header's columns, before any extra cells the row had.
                cells.insert(width, cell)
            else:
                cells[existing] = cell
            yield cells

    rows: Iterable[list[str]] = lines()
    if neutralise:
        rows = ([neutralise_cell(cell) for cell in cells] for cells in rows)
    bom = catalogue.encoding in ("utf-8-sig", "utf-16", "utf-32", "cp1252")
    text = io.TextIOWrapper(handle, encoding="utf-8-sig" if bom else "utf-8", newline="")
    try:
        # CRLF as RFC 4180 says; it also makes the writer quote any cell holding a "\r" or
        # "\n" (with "\n" alone, Python 3.11 leaves a lone "\r" unquoted).
        writer = csv.writer(
            text, delimiter=catalogue.delimiter, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n"
        )
        writer.writerows(rows)
        text.flush()
    finally:
        text.detach()  # the handle belongs to the caller


def check_output_path(path: Path, input_path: Path | None = None) -> None:
    """Make sure an output CSV can be written at ``path``, before any work starts.

    Hours of downloads must not end in "cannot write", nor in the input overwritten: a
    folder, a missing folder, something that is not a regular file (``/dev/null``, which
    the rename of :func:`write_output_csv` would replace), a place imgdesk may not write
    to, and the input itself under any spelling (``./``, a symlink, a hard link) are
    refused. The write test creates and removes a temp file as the real write does.

    Raises:
        CsvFileError: what is wrong, naming the path.
    """
    if input_path is not None and _same_file(path, input_path):
        raise CsvFileError(
            f"The output {path} is the input file itself; choose another file for the output."
        )
    if path.is_dir():
        raise CsvFileError(
            f"The output {path} is a folder; give a file name, such as {path / 'output.csv'}."
        )
    if path.exists() and not path.is_file():
        raise CsvFileError(f"The output {path} is not a regular file; choose a .csv file.")
    folder = path.parent
    if not folder.is_dir():
        raise CsvFileError(
            f"The folder {folder} does not exist, so the output {path.name} cannot be written "
            "there; create it or choose another place."
        )
    probe = folder / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        os.unlink(probe)
    except OSError as exc:
        raise CsvFileError(
            f"imgdesk cannot write the output {path.name} in {folder} "
            f"({(exc.strerror or str(exc)).lower()}); choose another place."
        ) from exc


def _same_file(first: Path, second: Path) -> bool:
    """True when both paths name one file (through ``..``, symlinks or hard links)."""
    try:
        if first.resolve() == second.resolve():
            return True
        return first.exists() and second.exists() and os.path.samefile(first, second)
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop
        return False


def _output_cell(row: CatalogueRow, outputs: Sequence[str | None] | None) -> str:
    """Join a row's output URLs, one slot per input URL."""
    if outputs is None:
        return ""
    if len(outputs) > len(row.urls):
        raise ValueError(
            f"Row {row.index} has {len(row.urls)} input URLs but {len(outputs)} outputs."
        )
    slots = [url or "" for url in outputs]
    slots.extend([""] * (len(row.urls) - len(outputs)))
    return ",".join(slots)


def _decode(data: bytes) -> tuple[str, str, list[str]]:
    """Turn bytes into text; return the text, the codec used and warnings for the user."""
    for signature, what, from_excel in _SIGNATURES:
        if data.startswith(signature):
            hint = f" {_EXCEL_HINT}" if from_excel else ""
            raise CsvFileError(f"This is not a CSV file: it looks like {what}.{hint}")

    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding, []
            except UnicodeDecodeError as exc:
                raise CsvFileError(
                    f"The file's text encoding cannot be read: it starts with a "
                    f"{encoding.upper()} byte-order mark but is not valid {encoding.upper()}.",
                    line=data.count(b"\n", 0, exc.start) + 1,
                ) from exc

    try:
        return data.decode("utf-8"), "utf-8", []
    except UnicodeDecodeError as utf8_error:
        first_bad_line = data.count(b"\n", 0, utf8_error.start) + 1
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise CsvFileError(
            "The file's text encoding cannot be read: it is neither UTF-8 nor "
            f"Windows-1252 (cp1252). {_EXCEL_HINT}",
            line=data.count(b"\n", 0, exc.start) + 1,
        ) from exc
    warning = (
        f"The file is not UTF-8 (the first non-UTF-8 character is on line {first_bad_line}), "
        "so it was read as Windows-1252 (cp1252). Check that accented letters look right; "
        "saving the file as CSV UTF-8 avoids this."
    )
    logger.warning("%s", warning)
    return text, "cp1252", [warning]


def _records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """Yield (1-based start line, cells) for every record, blank ones included."""
    # newline="" keeps line endings inside quoted cells, as the csv module requires.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    start = 1
    try:
        for cells in reader:
            yield start, cells
            start = reader.line_num + 1
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise _cell_too_long(text, start) from exc
        raise CsvFileError(f"The CSV cannot be read: {exc}.", line=start) from exc


def _cell_too_long(text: str, line: int) -> CsvFileError:
    """Say why a cell passed the csv module's limit: an unclosed quote, or a real long cell.

    A quote that is never closed swallows the rest of the file, so an odd number of quotes
    from the record's line to the end of the file means one is missing.
    """
    rest = io.StringIO(text, newline="")
    for _ in range(line - 1):
        next(rest)
    if rest.read().count('"') % 2:
        return CsvFileError(_UNCLOSED_QUOTE, line=line)
    limit = csv.field_size_limit()
    return CsvFileError(
        f"A cell in the row starting on this line is longer than {limit:,} characters, "
        "the most imgdesk reads in one cell.",
        line=line,
    )


def _is_blank(cells: Sequence[str]) -> bool:
    """True for a record whose cells are all empty or whitespace."""
    # One join and one C-level test instead of a Python loop: this runs for every record.
    joined = "".join(cells)
    return not joined or joined.isspace()


def _first_non_blank(records: Iterator[tuple[int, list[str]]]) -> tuple[int, list[str]]:
    """Take the header: the first record that is not blank."""
    for line, cells in records:
        if not _is_blank(cells):
            return line, cells
    raise CsvFileError(_EMPTY_MESSAGE)


def _choose_delimiter(text: str) -> str:
    """Pick the delimiter that makes the header hold the required columns.

    The header is the one line without URLs (whose commas would mislead a sniffer), so
    each candidate is tried on it. If none yields every required column, the one that
    yields the most, then the most cells, wins, and the missing-column error names what
    that reading found.
    """
    # The header is near the top; probing a slice spares copying a big file three times.
    head = text[:_HEADER_PROBE_CHARS]
    best = _DELIMITERS[0]
    best_score = (-1, -1)
    for delimiter in _DELIMITERS:
        try:
            _, header = _first_non_blank(_records(head, delimiter))
        except CsvFileError:
            continue
        keys = {normalise_header(cell) for cell in header}
        matched = sum(1 for _, accepted in _REQUIRED if keys & accepted)
        score = (matched, len(header))
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _locate_columns(header: Sequence[str], line: int) -> tuple[int, int, int, int | None]:
    """Find the required columns (and an existing output column) in the header."""
    keys = [normalise_header(cell) for cell in header]
    found: list[int] = []
    missing: list[str] = []
    for column, accepted in _REQUIRED:
        matches = [index for index, key in enumerate(keys) if key in accepted]
        if not matches:
            missing.append(column)
        elif len(matches) > 1:
            names = " and ".join(f'"{header[i]}" (column {i + 1})' for i in matches)
            raise CsvFileError(
                f'Several columns could be "{column}": {names}. Rename all but one.', line=line
            )
        else:
            found.append(matches[0])
    if missing:
        wanted = ", ".join(f'"{column}"' for column in missing)
        present = ", ".join(f'"{cell}"' for cell in header)
        raise CsvFileError(
            f"The header is missing the required column(s) {wanted}. Columns found: {present}. "
            "(Names are matched ignoring case, spaces and punctuation.)",
            line=line,
        )
    outputs = [index for index, key in enumerate(keys) if key in _OUTPUT_KEYS]
    return found[0], found[1], found[2], outputs[0] if outputs else None


def _parse_rows(
    records: Iterator[tuple[int, list[str]]],
    header: Sequence[str],
    serial_col: int,
    name_col: int,
    urls_col: int,
    on_rows: Callable[[Sequence[CatalogueRow]], None],
    chunk_rows: int,
) -> list[CatalogueRow]:
    """Turn the data records into rows, finding each row's problems.

    ``on_rows`` gets every ``chunk_rows`` new rows, and the rest at the end.
    """
    width = len(header)
    given = 0
    first_line_of_serial: dict[str, int] = {}
    rows: list[CatalogueRow] = []
    for line, cells in records:
        if _is_blank(cells):
            continue
        if len(rows) == MAX_ROWS:
            raise CsvFileError(
                f"The file has more than {MAX_ROWS:,} product rows, the most imgdesk takes in "
                "one file. Split it into smaller files.",
                line=line,
            )
        if len(cells) < width:
            cells.extend([""] * (width - len(cells)))
        serial = cells[serial_col].strip()
        product_name = cells[name_col].strip()
        urls = split_urls(cells[urls_col])

        problems: list[str] = []
        if not serial:
            problems.append(f"The {SERIAL_COLUMN} is empty.")
        elif serial in first_line_of_serial:
            first = first_line_of_serial[serial]
            problems.append(f'{SERIAL_COLUMN} "{serial}" is already used on line {first}.')
        else:
            first_line_of_serial[serial] = line
        if not product_name:
            problems.append("The product name is empty.")
        if not urls:
            problems.append("There is no image URL.")
        for url in urls:
            if not is_http_url(url):
                problems.append(f'This is not an absolute http or https URL: "{_shorten(url)}".')
        if len(cells) > width and not _is_blank(cells[width:]):
            # Usually several URLs separated by commas without quotes around the cell.
            problems.append(
                f"The row has {len(cells)} cells but the header has {width}; a cell that "
                "holds several URLs separated by commas must be in double quotes."
            )

        rows.append(
            CatalogueRow(
                index=len(rows),
                line=line,
                cells=tuple(cells),
                serial=serial,
                product_name=product_name,
                urls=tuple(urls),
                problems=tuple(problems),
            )
        )
        if len(rows) - given == chunk_rows:
            on_rows(rows[given:])
            given = len(rows)
    if len(rows) > given:
        on_rows(rows[given:])
    return rows


def _check_last_record_closed(text: str, delimiter: str, last_line: int) -> None:
    """Reject a file whose last quoted cell is never closed.

    The csv module quietly ends such a cell at the end of the file, so the rest of the
    file would become one cell. An unclosed quote always runs to the end, so only the
    last record needs checking: add a line after it, and if that line is swallowed into
    the record too, its quote was never closed.
    """
    lines = io.StringIO(text, newline="")
    for _ in range(last_line - 1):
        next(lines)
    tail = lines.read()
    if '"' not in tail:
        return
    probe = csv.reader(io.StringIO(tail + "\nend\n", newline=""), delimiter=delimiter)
    if sum(1 for _ in probe) == 1:
        raise CsvFileError(_UNCLOSED_QUOTE, line=last_line)


def _shorten(text: str) -> str:
    """Cut text for a message so one huge cell cannot flood the problem list."""
    if len(text) <= _MAX_QUOTED_URL:
        return text
    return text[: _MAX_QUOTED_URL - 1] + "\u2026"
