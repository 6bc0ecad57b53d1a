"""CSV files the product writes, with cells a spreadsheet cannot run as formulas (CWE-1236).

Every CSV goes through `csv_row`: a cell starting with `=`, `+`, `-`, `@`, a tab
or a carriage return would be taken by Excel, LibreOffice or Google Sheets as a
formula (`=HYPERLINK(...)` in a User-Agent), so it is written with a leading
single quote, which spreadsheets show as text and a reader can strip.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: object) -> str:
    """Return the cell's text, prefixed with a single quote if a spreadsheet would run it."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def csv_row(values: Iterable[object]) -> str:
    """Return one CSV record (quoted as needed, ending in CRLF) of formula-safe cells."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow([spreadsheet_cell(value) for value in values])
    return buffer.getvalue()
