"""Tests for imgdesk.core.csvio: the input contract (SPEC 1) and the output CSV (SPEC 4)."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imgdesk.core import csvio
from imgdesk.core.csvio import (
    OUTPUT_COLUMN,
    Catalogue,
    is_http_url,
    neutralise_cell,
    normalise_header,
    parse_catalogue,
    read_catalogue,
    split_urls,
    write_output_csv,
)
from imgdesk.core.errors import CsvFileError, ImageError

HEADER = "S. No.,Product Name,Input Image Urls"
A = "https://cdn.example/a.jpg"
B = "https://cdn.example/b.jpg"
C = "https://cdn.example/c.png"


def write_file(tmp_path: Path, content: str | bytes, name: str = "in.csv") -> Path:
    """Write test input exactly as given (no newline translation)."""
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def load(tmp_path: Path, content: str | bytes) -> Catalogue:
    return read_catalogue(write_file(tmp_path, content))


def read_rows(path: Path, delimiter: str = ",", encoding: str = "utf-8") -> list[list[str]]:
    with path.open(encoding=encoding, newline="") as handle:
        return list(csv.reader(handle, delimiter=delimiter))


def reject(tmp_path: Path, content: str | bytes) -> CsvFileError:
    with pytest.raises(CsvFileError) as info:
        load(tmp_path, content)
    return info.value


# --- reading: the spec's example and headers -------------------------------------------


def test_spec_example(tmp_path: Path) -> None:
    catalogue = load(
        tmp_path,
        f'{HEADER}\n1,SKU1,"{A},{B}"\n2,SKU2,"{C}"\n',
    )
    assert catalogue.name == "in.csv"
    assert catalogue.header == ("S. No.", "Product Name", "Input Image Urls")
    assert catalogue.delimiter == ","
    assert catalogue.encoding == "utf-8"
    assert catalogue.warnings == ()
    assert (catalogue.serial_column, catalogue.name_column, catalogue.urls_column) == (0, 1, 2)
    assert catalogue.output_column is None
    first, second = catalogue.rows
    assert (first.index, first.line, first.serial, first.product_name) == (0, 2, "1", "SKU1")
    assert first.urls == (A, B)
    assert first.cells == ("1", "SKU1", f"{A},{B}")
    assert first.valid and first.problems == ()
    assert (second.index, second.line, second.urls) == (1, 3, (C,))
    assert catalogue.valid_rows == catalogue.rows
    assert catalogue.invalid_rows == ()


@pytest.mark.parametrize(
    "header",
    [
        "s no,product name,input image urls",
        "S.No,PRODUCT_NAME,Input-Image-URLs",
        "sno,productname,inputimageurls",
        "SNo.,Product  Name ,  Input Image Urls",
        "Serial No,Product Name,Input Image URL",
        "Sl. No.,Product Name,Input Image Urls",
    ],
)
def test_header_variants_match(tmp_path: Path, header: str) -> None:
    catalogue = load(tmp_path, f"{header}\n1,SKU1,{A}\n")
    assert catalogue.header == tuple(header.split(","))
    assert catalogue.rows[0].serial == "1"
    assert catalogue.rows[0].product_name == "SKU1"
    assert catalogue.rows[0].urls == (A,)


def test_columns_in_any_order_with_extra_columns(tmp_path: Path) -> None:
    catalogue = load(
        tmp_path,
        f"Input Image Urls,Brand,S. No.,Notes,Product Name\n{A},Acme,7,fragile,SKU7\n",
    )
    assert (catalogue.serial_column, catalogue.name_column, catalogue.urls_column) == (2, 4, 0)
    row = catalogue.rows[0]
    assert (row.serial, row.product_name, row.urls) == ("7", "SKU7", (A,))
    assert row.cells == (A, "Acme", "7", "fragile", "SKU7")


def test_existing_output_column_is_found(tmp_path: Path) -> None:
    catalogue = load(tmp_path, f"{HEADER},output image URLs\n1,SKU1,{A},old\n")
    assert catalogue.output_column == 3


@pytest.mark.parametrize(
    ("cell", "key"),
    [("S. No.", "sno"), ("  Product Name ", "productname"), ("\ufeffS.No", "sno"), ("É-1", "é1")],
)
def test_normalise_header(cell: str, key: str) -> None:
    assert normalise_header(cell) == key


# --- reading: encodings ----------------------------------------------------------------


def test_utf8_bom_is_accepted_and_not_part_of_the_header(tmp_path: Path) -> None:
    catalogue = load(tmp_path, b"\xef\xbb\xbf" + f"{HEADER}\n1,Caf\u00e9,{A}\n".encode())
    assert catalogue.encoding == "utf-8-sig"
    assert catalogue.header[0] == "S. No."
    assert catalogue.rows[0].product_name == "Caf\u00e9"
    assert catalogue.warnings == ()


def test_utf16_with_bom_is_accepted(tmp_path: Path) -> None:
    catalogue = load(tmp_path, f"{HEADER}\n1,\u65e5\u672c,{A}\n".encode("utf-16"))
    assert catalogue.encoding == "utf-16"
    assert catalogue.rows[0].product_name == "\u65e5\u672c"


def test_cp1252_fallback_warns_with_the_line(tmp_path: Path) -> None:
    content = f"{HEADER}\n1,SKU1,{A}\n2,Caf\u00e9 \u20ac,{B}\n".encode("cp1252")
    catalogue = load(tmp_path, content)
    assert catalogue.encoding == "cp1252"
    assert catalogue.rows[1].product_name == "Caf\u00e9 \u20ac"
    (warning,) = catalogue.warnings
    assert "cp1252" in warning
    assert "line 3" in warning


def test_unreadable_encoding_is_rejected(tmp_path: Path) -> None:
    # 0x81 is neither valid UTF-8 here nor defined in cp1252.
    error = reject(tmp_path, f"{HEADER}\n1,SKU1,{A}\n".encode() + b"2,\x81\x8d,x\n")
    assert "encoding" in error.message
    assert error.line == 3


# --- reading: delimiters and blank lines -----------------------------------------------


def test_semicolon_delimiter_even_with_commas_in_urls(tmp_path: Path) -> None:
    catalogue = load(
        tmp_path,
        f"S. No.;Product Name;Input Image Urls\n1;SKU1;{A},{B},{C}\n2;SKU2;{C}\n",
    )
    assert catalogue.delimiter == ";"
    assert catalogue.rows[0].urls == (A, B, C)
    assert catalogue.rows[0].valid


def test_tab_delimiter(tmp_path: Path) -> None:
    catalogue = load(tmp_path, f"S. No.\tProduct Name\tInput Image Urls\n1\tSKU, big\t{A}\n")
    assert catalogue.delimiter == "\t"
    assert catalogue.rows[0].product_name == "SKU, big"


def test_blank_lines_are_skipped_and_lines_counted(tmp_path: Path) -> None:
    content = f"\n\n{HEADER}\n\n1,SKU1,{A}\n,,\n  , \t,\n2,SKU2,{B}\n\n"
    catalogue = load(tmp_path, content)
    assert [(row.index, row.line, row.serial) for row in catalogue.rows] == [
        (0, 5, "1"),
        (1, 8, "2"),
    ]


def test_crlf_line_endings(tmp_path: Path) -> None:
    catalogue = load(tmp_path, f"{HEADER}\r\n1,SKU1,{A}\r\n\r\n2,SKU2,{B}\r\n")
    assert [(row.line, row.urls) for row in catalogue.rows] == [(2, (A,)), (4, (B,))]


def test_quoted_multiline_cells_keep_physical_line_numbers(tmp_path: Path) -> None:
    content = (
        f"{HEADER},Notes\n"  # line 1
        f'1,SKU1,"{A}\n{B}","two\nline note"\n'  # lines 2-4
        f'2,"Name\non\nthree",{C},x\n'  # lines 5-7
        f"\n"  # line 8, blank
        f"3,SKU3,{A},\n"  # line 9
    )
    catalogue = load(tmp_path, content)
    assert [row.line for row in catalogue.rows] == [2, 5, 9]
    assert catalogue.rows[0].urls == (A, B)
    assert catalogue.rows[0].cells[3] == "two\nline note"
    assert catalogue.rows[1].product_name == "Name\non\nthree"


def test_short_rows_are_padded_and_extra_cells_kept(tmp_path: Path) -> None:
    catalogue = load(tmp_path, f"{HEADER},Notes\n1,SKU1,{A}\n2,SKU2,{B},n,,\n")
    assert catalogue.rows[0].cells == ("1", "SKU1", A, "")
    assert catalogue.rows[1].cells == ("2", "SKU2", B, "n", "", "")
    # Trailing empty cells are harmless.
    assert catalogue.rows[1].valid


# --- reading: file-level errors --------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf", b"\n\r\n  \n", b",,\n , \n"])
def test_empty_file_is_rejected(tmp_path: Path, content: bytes) -> None:
    error = reject(tmp_path, content)
    assert "empty" in error.message


@pytest.mark.parametrize(("content", "line"), [(f"{HEADER}\n", 1), (f"\n{HEADER}\n\n,,\n", 2)])
def test_header_without_rows_is_rejected(tmp_path: Path, content: str, line: int) -> None:
    error = reject(tmp_path, content)
    assert "no product rows" in error.message
    assert error.line == line


def test_missing_column_names_it_and_lists_found_columns(tmp_path: Path) -> None:
    error = reject(tmp_path, f"\n\nS. No.,Name,Input Image Urls\n1,SKU1,{A}\n")
    assert error.line == 3
    assert '"Product Name"' in error.message
    assert '"S. No."' not in error.message.split("Columns found")[0]
    assert 'Columns found: "S. No.", "Name", "Input Image Urls"' in error.message
    assert str(error).startswith("line 3: ")


def test_several_missing_columns_are_all_named(tmp_path: Path) -> None:
    error = reject(tmp_path, "id,title\n1,x\n")
    assert '"S. No.", "Product Name", "Input Image Urls"' in error.message
    assert error.line == 1


def test_ambiguous_column_is_rejected(tmp_path: Path) -> None:
    error = reject(tmp_path, f"{HEADER},SNo\n1,SKU1,{A},2\n")
    assert "S. No." in error.message and "column 4" in error.message
    assert error.line == 1


def test_nul_bytes_mean_not_a_csv(tmp_path: Path) -> None:
    error = reject(tmp_path, f"{HEADER}\n1,SKU1,{A}\n".encode() + b"2,\x00\x01\x02,x\n")
    assert "not a CSV" in error.message
    assert error.line == 3


@pytest.mark.parametrize(
    "content",
    [b"PK\x03\x04\x14\x00\x06\x00rest-of-xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1old-xls"],
)
def test_excel_workbook_is_rejected_with_a_hint(tmp_path: Path, content: bytes) -> None:
    error = reject(tmp_path, content)
    assert "not a CSV" in error.message
    assert "Excel" in error.message and "CSV UTF-8" in error.message


def test_png_renamed_to_csv_is_rejected(tmp_path: Path) -> None:
    error = reject(tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert "not a CSV" in error.message and "PNG" in error.message


def test_unclosed_quote_is_rejected_with_its_line(tmp_path: Path) -> None:
    content = f'{HEADER}\n1,SKU1,{A}\n2,"SKU2,{B}\n3,SKU3,{C}\n4,SKU4,{C}\n'
    error = reject(tmp_path, content)
    assert "never closed" in error.message
    assert error.line == 3


def test_closed_quote_on_last_line_is_fine(tmp_path: Path) -> None:
    catalogue = load(tmp_path, f'{HEADER}\n1,"SKU ""1""","{A}"')
    assert catalogue.rows[0].product_name == 'SKU "1"'


def test_a_long_cell_with_balanced_quotes_is_named_with_the_limit(tmp_path: Path) -> None:
    cell = "x" * (10 * 1024 * 1024)
    error = reject(tmp_path, f'{HEADER}\n1,SKU1,{A}\n2,"{cell}",{B}\n3,SKU3,{C}\n')
    assert error.line == 3
    assert f"longer than {csv.field_size_limit():,} characters" in error.message
    assert "quote" not in error.message


def test_a_long_run_after_an_unclosed_quote_says_the_quote_is_missing(tmp_path: Path) -> None:
    rows = "".join(f"{i},SKU{i},{A}\n" for i in range(3, 8000))
    error = reject(tmp_path, f'{HEADER}\n1,SKU1,{A}\n2,"SKU2,{B}\n{rows}')
    assert error.line == 3
    assert "never closed" in error.message


def test_missing_file_is_a_csv_file_error(tmp_path: Path) -> None:
    with pytest.raises(CsvFileError, match="cannot be read"):
        read_catalogue(tmp_path / "nope.csv")


def test_parse_catalogue_from_bytes() -> None:
    catalogue = parse_catalogue(f"{HEADER}\n1,SKU1,{A}\n".encode(), "upload.csv")
    assert catalogue.name == "upload.csv"
    assert catalogue.rows[0].urls == (A,)


# --- reading: row-level problems -------------------------------------------------------


def problems_of(tmp_path: Path, *rows: str) -> list[tuple[str, ...]]:
    catalogue = load(tmp_path, HEADER + "\n" + "\n".join(rows) + "\n")
    return [row.problems for row in catalogue.rows]


def test_empty_product_name(tmp_path: Path) -> None:
    assert problems_of(tmp_path, f"1,  ,{A}") == [("The product name is empty.",)]


def test_no_url(tmp_path: Path) -> None:
    assert problems_of(tmp_path, '1,SKU1," , ;\n"') == [("There is no image URL.",)]


def test_empty_serial(tmp_path: Path) -> None:
    assert problems_of(tmp_path, f" ,SKU1,{A}") == [("The S. No. is empty.",)]


def test_duplicate_serial_names_the_first_line(tmp_path: Path) -> None:
    catalogue = load(tmp_path, f"{HEADER}\n1,SKU1,{A}\n\n2,SKU2,{B}\n 1 ,SKU3,{C}\n1,SKU4,{C}\n")
    assert [row.valid for row in catalogue.rows] == [True, True, False, False]
    assert catalogue.rows[2].problems == ('S. No. "1" is already used on line 2.',)
    assert catalogue.rows[3].problems == ('S. No. "1" is already used on line 2.',)
    assert [row.serial for row in catalogue.invalid_rows] == ["1", "1"]
    assert [row.product_name for row in catalogue.valid_rows] == ["SKU1", "SKU2"]


@pytest.mark.parametrize(
    "bad",
    ["ftp://cdn.example/a.jpg", "cdn.example/a.jpg", "/images/a.jpg", "https://", "http:///x"],
)
def test_non_http_url_is_quoted(tmp_path: Path, bad: str) -> None:
    catalogue = load(tmp_path, f'{HEADER}\n1,SKU1,"{A}, {bad}"\n')
    row = catalogue.rows[0]
    assert row.urls == (A, bad)
    assert row.problems == (f'This is not an absolute http or https URL: "{bad}".',)


def test_long_bad_url_is_truncated_in_the_message(tmp_path: Path) -> None:
    bad = "ftp://cdn.example/" + "x" * 200
    (problems,) = problems_of(tmp_path, f"1,SKU1,{bad}")
    (problem,) = problems
    assert bad not in problem
    assert bad[:79] + "\u2026" in problem


def test_several_problems_on_one_row(tmp_path: Path) -> None:
    catalogue = load(tmp_path, f"{HEADER},Notes\n,,,only a note\n")
    (problems,) = [row.problems for row in catalogue.rows]
    assert problems == (
        "The S. No. is empty.",
        "The product name is empty.",
        "There is no image URL.",
    )


def test_unquoted_comma_separated_urls_are_a_problem(tmp_path: Path) -> None:
    catalogue = load(tmp_path, f"{HEADER}\n1,SKU1,{A},{B}\n")
    row = catalogue.rows[0]
    assert row.cells == ("1", "SKU1", A, B)
    assert row.urls == (A,)
    (problem,) = row.problems
    assert "4 cells" in problem and "header has 3" in problem and "double quotes" in problem


# --- URLs ------------------------------------------------------------------------------

CLOUDINARY = "https://res.cloudinary.com/x/image/upload/w_100,h_100/a.jpg"


@pytest.mark.parametrize(
    ("cell", "urls"),
    [
        (f"{A},{B}", [A, B]),
        (f"{A}, {B}", [A, B]),
        (f"{A};{B}", [A, B]),
        (f"{A}\n{B}\r\n{C}", [A, B, C]),
        (f"  {A}\t {B}  ", [A, B]),
        (f"{A},,{B},", [A, B]),
        (f"\"{A}\", '{B}', <{C}>", [A, B, C]),
        (f"\u201c{A}\u201d", [A]),
        (CLOUDINARY, [CLOUDINARY]),
        (f"{CLOUDINARY},{A}", [CLOUDINARY, A]),
        (f"{A},{CLOUDINARY}", [A, CLOUDINARY]),
        (f'"{CLOUDINARY}","{A}"', [CLOUDINARY, A]),
        # A comma followed by whitespace always separates, even inside a would-be URL.
        ("https://x.example/w_100, h_100/a.jpg", ["https://x.example/w_100", "h_100/a.jpg"]),
        ("https://x.example/a.jpg;v=2", ["https://x.example/a.jpg;v=2"]),
        ("www.a.example/x.jpg,www.b.example/y.jpg", ["www.a.example/x.jpg", "www.b.example/y.jpg"]),
        (f"{B},{A},{B}", [B, A, B]),
        ("", []),
        (" , ; \n", []),
    ],
)
def test_split_urls(cell: str, urls: list[str]) -> None:
    assert split_urls(cell) == urls


@pytest.mark.parametrize(
    "url",
    [
        A,
        "HTTP://CDN.EXAMPLE/A.JPG",
        "http://127.0.0.1:8080/a.png?x=1#f",
        "https://user:pw@cdn.example/a",
        "http://[::1]:80/a",
        "https://\u00e9xample.fr/\u00e9t\u00e9.jpg",
        CLOUDINARY,
    ],
)
def test_is_http_url_accepts(url: str) -> None:
    assert is_http_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "ftp://cdn.example/a.jpg",
        "file:///images/a.jpg",
        "cdn.example/a.jpg",
        "//cdn.example/a.jpg",
        "https://",
        "https:///a.jpg",
        "http://cdn.example:port/a",
        "http://[::1/a",
        "https://cdn example/a.jpg",
        "https://cdn.example/a\x01.jpg",
        "javascript:alert(1)",
    ],
)
def test_is_http_url_refuses(url: str) -> None:
    assert not is_http_url(url)


# --- writing ---------------------------------------------------------------------------


def test_output_alignment_with_empty_slots(tmp_path: Path) -> None:
    catalogue = load(tmp_path, f'{HEADER}\n1,SKU1,"{A},{B},{C}"\n2,SKU2,{A}\n3,SKU3,"{A},{B}"\n')
    out = tmp_path / "out.csv"
    write_output_csv(out, catalogue, {0: ["file:///o/a", None, "file:///o/c"], 1: [None], 2: ["x"]})
    assert read_rows(out) == [
        ["S. No.", "Product Name", "Input Image Urls", OUTPUT_COLUMN],
        ["1", "SKU1", f"{A},{B},{C}", "file:///o/a,,file:///o/c"],
        ["2", "SKU2", A, ""],
        # Fewer outputs than inputs (not done yet): the remaining slots stay empty.
        ["3", "SKU3", f"{A},{B}", "x,"],
    ]
    assert out.read_bytes().endswith(b"\r\n")
    assert not out.read_bytes().startswith(b"\xef\xbb\xbf")


def test_invalid_and_unmapped_rows_keep_empty_output(tmp_path: Path) -> None:
    catalogue = load(tmp_path, f"{HEADER},Notes\n1,SKU1,{A},n1\n2,,{B},n2\n\n3,SKU3,{C},n3\n")
    out = tmp_path / "out.csv"
    write_output_csv(out, catalogue, {0: ["o1"]})
    assert read_rows(out)[1:] == [
        ["1", "SKU1", A, "n1", "o1"],
        ["2", "", B, "n2", ""],
        ["3", "SKU3", C, "n3", ""],
    ]


def test_existing_output_column_is_replaced_in_place(tmp_path: Path) -> None:
    catalogue = load(tmp_path, f"{HEADER},output_image_urls,Notes\n1,SKU1,{A},stale,keep\n")
    out = tmp_path / "out.csv"
    write_output_csv(out, catalogue, {0: ["new"]})
    assert read_rows(out) == [
        ["S. No.", "Product Name", "Input Image Urls", "output_image_urls", "Notes"],
        ["1", "SKU1", A, "new", "keep"],
    ]


def test_delimiter_header_spelling_and_extra_cells_kept(tmp_path: Path) -> None:
    catalogue = load(tmp_path, f"s.no;PRODUCT NAME;input image urls\n1;SKU 1, big;{A},{B};;\n")
    out = tmp_path / "out.csv"
    write_output_csv(out, catalogue, {0: ["o;1", "o2"]})
    assert read_rows(out, delimiter=";") == [
        ["s.no", "PRODUCT NAME", "input image urls", OUTPUT_COLUMN],
        ["1", "SKU 1, big", f"{A},{B}", "o;1,o2", "", ""],
    ]


@pytest.mark.parametrize(
    ("content", "bom"),
    [
        (b"\xef\xbb\xbf" + f"{HEADER}\n1,SKU1,{A}\n".encode(), True),
        (f"{HEADER}\n1,SKU1,{A}\n".encode("utf-16"), True),
        (f"{HEADER}\n1,Caf\u00e9,{A}\n".encode("cp1252"), True),
        (f"{HEADER}\n1,Caf\u00e9,{A}\n".encode(), False),
    ],
)
def test_output_bom_follows_input(tmp_path: Path, content: bytes, bom: bool) -> None:
    catalogue = load(tmp_path, content)
    out = tmp_path / "out.csv"
    write_output_csv(out, catalogue, {})
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") is bom
    assert data.removeprefix(b"\xef\xbb\xbf").decode("utf-8").startswith("S. No.,")


def test_formulas_are_neutralised_by_default(tmp_path: Path) -> None:
    content = (
        f"{HEADER},Price,=HEADER()\n"
        f'1,"=HYPERLINK(""http://evil"")",{A},-5,"\t=1"\n'
        f"2,@SUM(A1),{B}, -1+2,+x\n"
    )
    catalogue = load(tmp_path, content)
    out = tmp_path / "out.csv"
    write_output_csv(out, catalogue, {0: ["=cmd|' /C calc'!A0"], 1: ["file:///o/b"]})
    assert read_rows(out) == [
        [*HEADER.split(","), "Price", "'=HEADER()", OUTPUT_COLUMN],
        ["1", '\'=HYPERLINK("http://evil")', A, "-5", "'\t=1", "'=cmd|' /C calc'!A0"],
        ["2", "'@SUM(A1)", B, "' -1+2", "'+x", "file:///o/b"],
    ]


def test_neutralise_off_writes_cells_verbatim(tmp_path: Path) -> None:
    catalogue = load(tmp_path, f"{HEADER},F\n1,=1+1,{A},@x\n")
    out = tmp_path / "out.csv"
    write_output_csv(out, catalogue, {0: ["+o"]}, neutralise=False)
    assert read_rows(out)[1] == ["1", "=1+1", A, "@x", "+o"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+1+1", "'+1+1"),
        ("-A1", "'-A1"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("  =1", "'  =1"),
        ("-", "'-"),
        ("+91 98765 43210", "'+91 98765 43210"),
        ("-5", "-5"),
        ("+1.5", "+1.5"),
        ("-2,5", "-2,5"),
        ("-1e3", "-1e3"),
        ("a=1", "a=1"),
        ("'=1", "'=1"),
        ("", ""),
        (A, A),
        ("file:///o/a.jpg", "file:///o/a.jpg"),
    ],
)
def test_neutralise_cell(value: str, expected: str) -> None:
    assert neutralise_cell(value) == expected
    # Idempotent: neutralising twice changes nothing more.
    assert neutralise_cell(expected) == expected


def test_too_many_outputs_is_a_programming_error(tmp_path: Path) -> None:
    catalogue = load(tmp_path, f"{HEADER}\n1,SKU1,{A}\n")
    with pytest.raises(ValueError, match="1 input URLs but 2 outputs"):
        write_output_csv(tmp_path / "out.csv", catalogue, {0: ["a", "b"]})


# --- writing: atomicity ----------------------------------------------------------------


def test_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    catalogue = load(tmp_path, f"{HEADER}\n1,SKU1,{A}\n")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    write_output_csv(out_dir / "out.csv", catalogue, {0: ["o"]})
    write_output_csv(out_dir / "out.csv", catalogue, {0: ["p"]})
    assert [path.name for path in out_dir.iterdir()] == ["out.csv"]
    assert read_rows(out_dir / "out.csv")[1][-1] == "p"


def test_failed_rename_keeps_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    catalogue = load(tmp_path, f"{HEADER}\n1,SKU1,{A}\n")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "out.csv"
    out.write_bytes(b"previous")

    def refuse(src: object, dst: object) -> None:
        raise PermissionError("file is open in Excel")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(ImageError) as refused:
        write_output_csv(out, catalogue, {0: ["o"]})
    assert refused.value.code == "storage" and "file is open in Excel" in refused.value.message
    assert out.read_bytes() == b"previous"
    assert [path.name for path in out_dir.iterdir()] == ["out.csv"]


class ExplodingOutputs(Mapping[int, Sequence[str | None]]):
    """Serves outputs for the first rows, then fails: a crash in the middle of writing."""

    def __init__(self, fail_at: int) -> None:
        self.fail_at = fail_at

    def __getitem__(self, index: int) -> Sequence[str | None]:
        if index >= self.fail_at:
            raise RuntimeError("boom")
        return ["o" * 1000]

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.fail_at))

    def __len__(self) -> int:
        return self.fail_at


def test_failure_mid_write_keeps_previous_file(tmp_path: Path) -> None:
    rows = "\n".join(f"{i},SKU{i},{A}" for i in range(2000))
    catalogue = load(tmp_path, f"{HEADER}\n{rows}\n")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "out.csv"
    out.write_bytes(b"previous")
    with pytest.raises(RuntimeError, match="boom"):
        write_output_csv(out, catalogue, ExplodingOutputs(fail_at=1500))
    assert out.read_bytes() == b"previous"
    assert [path.name for path in out_dir.iterdir()] == ["out.csv"]


def test_write_into_a_folder_in_the_way_is_a_storage_error(tmp_path: Path) -> None:
    catalogue = load(tmp_path, f"{HEADER}\n1,SKU1,{A}\n")
    (tmp_path / "blocker").write_bytes(b"a file where a folder should be")
    with pytest.raises(ImageError) as refused:
        write_output_csv(tmp_path / "blocker" / "out.csv", catalogue, {})
    assert "is a file, not a folder" in refused.value.message


# --- checking the output's place before any work ----------------------------------------


def test_a_writable_output_place_passes_and_is_left_as_it_was(tmp_path: Path) -> None:
    source = write_file(tmp_path, f"{HEADER}\n1,SKU1,{A}\n")
    csvio.check_output_path(tmp_path / "out.csv", source)
    (tmp_path / "old.csv").write_text("previous")
    csvio.check_output_path(tmp_path / "old.csv", source)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.csv", "old.csv"]
    assert (tmp_path / "old.csv").read_text() == "previous"


def test_the_input_itself_is_refused_as_output_under_any_spelling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_file(tmp_path, f"{HEADER}\n1,SKU1,{A}\n")
    (tmp_path / "link.csv").symlink_to(source)
    os.link(source, tmp_path / "hard.csv")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    for spelling in ["in.csv", "./in.csv", "sub/../in.csv", "link.csv", "hard.csv"]:
        with pytest.raises(CsvFileError, match="is the input file itself"):
            csvio.check_output_path(Path(spelling), source)
    with pytest.raises(CsvFileError, match="is the input file itself"):
        csvio.check_output_path(source, Path("link.csv"))


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("folder", "is a folder; give a file name"),
        ("missing/out.csv", "missing does not exist"),
        ("a-file/out.csv", "a-file does not exist"),
    ],
)
def test_an_output_place_that_cannot_hold_a_file_is_refused(
    tmp_path: Path, where: str, expected: str
) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "a-file").write_text("")
    with pytest.raises(CsvFileError, match=expected):
        csvio.check_output_path(tmp_path / where)


@pytest.mark.skipif(not Path("/dev/null").exists(), reason="needs /dev/null")
def test_a_device_is_refused_as_output() -> None:
    with pytest.raises(CsvFileError, match="is not a regular file"):
        csvio.check_output_path(Path("/dev/null"))


# --- round trip ------------------------------------------------------------------------

NASTY = [
    "",
    " ",
    '"',
    '""',
    '","',
    ",",
    ";",
    "\t",
    "\n",
    "\r",
    "\r\n",
    "a\rb",
    "=1+1",
    "-5",
    "+x",
    "@SUM(A1)",
    "\t=1",
    "'=1",
    " lead",
    "trail ",
    "Caf\u00e9 \u20ac \u65e5\u672c \U0001f600",
    "\ufeff",
    CLOUDINARY,
    f"{A},{B}",
]
CELL_TEXT = st.one_of(
    st.sampled_from(NASTY),
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=20),
    st.lists(st.sampled_from(NASTY), max_size=4).map("".join),
)


def make_input(delimiter: str, cells: list[tuple[str, str, str]], bom: bool) -> bytes:
    buffer = io.StringIO(newline="")
    # CRLF: with "\n" alone, Python's writer would leave a cell holding "\r" unquoted.
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(["S. No.", "Product Name", "Input Image Urls", "Notes"])
    for serial, row in enumerate(cells, start=1):
        writer.writerow([str(serial), *row])
    return ("\ufeff" if bom else "").encode() + buffer.getvalue().encode()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    delimiter=st.sampled_from([",", ";", "\t"]),
    cells=st.lists(st.tuples(CELL_TEXT, CELL_TEXT, CELL_TEXT), min_size=1, max_size=8),
    bom=st.booleans(),
    data=st.data(),
)
def test_round_trip(
    tmp_path: Path,
    delimiter: str,
    cells: list[tuple[str, str, str]],
    bom: bool,
    data: st.DataObject,
) -> None:
    catalogue = parse_catalogue(make_input(delimiter, cells, bom), "in.csv")
    assert catalogue.delimiter == delimiter
    assert [row.cells for row in catalogue.rows] == [
        (str(serial), *row) for serial, row in enumerate(cells, start=1)
    ]

    outputs: dict[int, list[str | None]] = {}
    expected_output: list[str] = []
    for row in catalogue.rows:
        slots = data.draw(
            st.lists(
                st.one_of(st.none(), CELL_TEXT), min_size=len(row.urls), max_size=len(row.urls)
            )
        )
        outputs[row.index] = slots
        expected_output.append(",".join(slot or "" for slot in slots))

    out = tmp_path / "round-trip.csv"
    write_output_csv(out, catalogue, outputs, neutralise=False)
    again = read_catalogue(out)
    assert again.header == (*catalogue.header, OUTPUT_COLUMN)
    assert again.delimiter == delimiter
    assert again.encoding == ("utf-8-sig" if bom else "utf-8")
    assert again.output_column == 4
    assert [row.cells for row in again.rows] == [
        (*row.cells, output) for row, output in zip(catalogue.rows, expected_output, strict=True)
    ]
    assert [row.urls for row in again.rows] == [row.urls for row in catalogue.rows]
    assert [row.problems for row in again.rows] == [row.problems for row in catalogue.rows]


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cells=st.lists(st.tuples(CELL_TEXT, CELL_TEXT, CELL_TEXT), min_size=1, max_size=8))
def test_round_trip_neutralised_only_adds_quotes(
    tmp_path: Path, cells: list[tuple[str, str, str]]
) -> None:
    catalogue = parse_catalogue(make_input(",", cells, bom=False), "in.csv")
    out = tmp_path / "neutralised.csv"
    write_output_csv(out, catalogue, {}, neutralise=True)
    again = read_catalogue(out)
    for before, after in zip(catalogue.rows, again.rows, strict=True):
        for old, new in zip(before.cells, after.cells[:-1], strict=True):
            assert new == neutralise_cell(old)
            assert new in (old, "'" + old)
            assert not new.lstrip(" ").startswith(("=", "+", "@", "\t", "\r")) or new == old


# --- speed and layering ----------------------------------------------------------------


def test_parses_100k_rows() -> None:
    """Scale, not speed: the benchmarks time it (timed unit tests flake on shared machines)."""
    lines = [f"{HEADER},Notes"]
    lines.extend(
        f'{i},SKU {i},"https://cdn.example/img/{i}/a.jpg,https://cdn.example/img/{i}/b.jpg",n{i}'
        for i in range(100_000)
    )
    data = ("\n".join(lines) + "\n").encode()
    catalogue = parse_catalogue(data, "big.csv")
    assert len(catalogue.valid_rows) == 100_000
    assert catalogue.rows[-1].urls == (
        "https://cdn.example/img/99999/a.jpg",
        "https://cdn.example/img/99999/b.jpg",
    )


def test_csvio_imports_no_qt() -> None:
    code = (
        "import sys, imgdesk.core.csvio; "
        "sys.exit(any(m.split('.')[0] in ('PySide6', 'qasync') for m in sys.modules))"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    assert subprocess.run([sys.executable, "-c", code], env=env, check=False).returncode == 0


# --- limits and hostile input -------------------------------------------------------------


def test_too_many_rows_are_refused_with_the_limit_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csvio, "MAX_ROWS", 5)
    lines = [HEADER] + [f"{i},P{i},https://cdn.example/{i}.jpg" for i in range(1, 7)]
    with pytest.raises(CsvFileError, match="more than 5 product rows") as caught:
        parse_catalogue(("\n".join(lines) + "\n").encode(), "big.csv")
    assert caught.value.line == 7
    lines = lines[:6]
    assert len(parse_catalogue(("\n".join(lines) + "\n").encode(), "ok.csv").rows) == 5


def test_a_million_rows_are_refused_with_bounded_memory(tmp_path: Path) -> None:
    row = "{0},Product {0},https://cdn.example/img/{0}/a.jpg\n"
    path = tmp_path / "huge.csv"
    with path.open("w", encoding="utf-8") as handle:
        handle.write(HEADER + "\n")
        handle.writelines(row.format(i) for i in range(1, 1_000_001))
    code = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from imgdesk.core.csvio import read_catalogue\n"
        "from imgdesk.core.errors import CsvFileError\n"
        "try:\n"
        "    read_catalogue(Path(sys.argv[1]))\n"
        "except CsvFileError as error:\n"
        "    print(error)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    message, peak_mb = done.stdout.strip().splitlines()
    assert "more than 200,000 product rows" in message
    assert int(peak_mb) < 600, f"peak memory {peak_mb} MB"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_pipe_is_read_up_to_the_limit_and_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = 1024 * 1024
    monkeypatch.setattr(csvio, "MAX_FILE_BYTES", limit)
    fifo = tmp_path / "in.csv"
    os.mkfifo(fifo)
    row = f"1,Product,{A}\n".encode()
    written = 0
    stopped_by_reader = threading.Event()

    def write_forever_or_nearly() -> None:
        nonlocal written
        with fifo.open("wb", buffering=0) as pipe:
            try:
                pipe.write(f"{HEADER}\n".encode())
                while written < 8 * limit:  # bounded, so a reader without a limit still ends
                    written += pipe.write(row * 100)
            except BrokenPipeError:
                stopped_by_reader.set()

    writer = threading.Thread(target=write_forever_or_nearly, daemon=True)
    writer.start()
    with pytest.raises(CsvFileError, match="larger than 1 MB, the most imgdesk reads") as caught:
        read_catalogue(fifo)
    writer.join(30)
    assert stopped_by_reader.is_set(), f"the reader took all {written} bytes"
    assert written < 2 * limit
    assert caught.value.line is None


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_an_endless_device_is_refused_with_the_limit_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(csvio, "MAX_FILE_BYTES", 2 * 1024 * 1024)
    with pytest.raises(CsvFileError, match="larger than 2 MB, the most imgdesk reads"):
        read_catalogue(Path("/dev/zero"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_raise_only_our_own_error(data: bytes) -> None:
    try:
        catalogue = parse_catalogue(data, "fuzz.csv")
    except CsvFileError as error:
        assert error.message
    else:
        assert catalogue.rows


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(alphabet=st.sampled_from(list('ab,;\t"\n\r =+-@\ufeff\u00e9\u4e2d:/.')), max_size=300)
)
def test_csv_like_text_raises_only_our_own_error(text: str) -> None:
    for prefix in ("", HEADER + "\n"):
        try:
            parse_catalogue((prefix + text).encode(), "fuzz.csv")
        except CsvFileError as error:
            assert error.message
