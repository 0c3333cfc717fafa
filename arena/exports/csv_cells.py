"""CSV that a spreadsheet opens as data: no cell becomes a formula (OWASP, "CSV Injection").

A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as a formula by
Excel, LibreOffice and Google Sheets: a model named ``=HYPERLINK("https://evil.example", "click")``
would become a live link in a downloaded leaderboard. Every CSV the site writes goes through
:class:`DictWriter`, which prefixes such a text cell with a single quote (shown as text, the quote
hidden) and lets the csv module quote it where needed. Numbers are written as numbers: a negative
rating is a float here, never text.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from typing import Any

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """``value``, with a leading single quote when it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


class DictWriter(csv.DictWriter):
    """``csv.DictWriter`` whose text cells can never be formulas."""

    def writerow(self, rowdict: Mapping[str, Any]) -> Any:
        return super().writerow({key: neutralise(value) for key, value in rowdict.items()})
