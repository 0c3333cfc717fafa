"""No CSV the site writes can run as a spreadsheet formula (OWASP CSV injection)."""

from __future__ import annotations

import csv
import io

import pytest

from arena.exports.csv_cells import FORMULA_TRIGGERS, neutralise
from arena.exports.filters import ExportFilters
from arena.exports.writer import write_export
from arena.leaderboards.snapshots import compute_snapshots
from tests.arena.leaderboards.test_leaderboards import cast_votes
from tests.factories import make_campaign

pytestmark = pytest.mark.django_db

HOSTILE = (
    '=HYPERLINK("https://evil.example","click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "\tTabbed",
    "\rReturned",
)


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def assert_no_formula(text: str) -> list[list[str]]:
    """Every cell is a number (a negative rating is one) or text that does not start a formula."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    for row in rows:
        for cell in row:
            assert is_number(cell) or not cell.startswith(FORMULA_TRIGGERS), f"a formula cell: {cell!r}"
    return rows


@pytest.fixture
def hostile_campaign(db):
    campaign = make_campaign(slug="csv", models=HOSTILE[:4], prompts=4)
    cast_votes(campaign, 12)
    compute_snapshots(campaign)
    return campaign


def test_the_leaderboard_csv_shows_hostile_model_names_as_text(client, hostile_campaign):
    response = client.get("/c/csv/leaderboard.csv")
    assert response.status_code == 200
    rows = assert_no_formula(response.content.decode())
    models = {row[rows[0].index("model")] for row in rows[1:]}
    assert models == {"'" + name for name in HOSTILE[:4]}  # the name, kept whole, as text


def test_the_leaderboard_export_shows_hostile_model_names_as_text(hostile_campaign, settings, tmp_path):
    settings.ARENA_EXPORT_DIR = tmp_path
    path = tmp_path / "board.csv"
    write_export(hostile_campaign, "leaderboard-csv", ExportFilters(), path)
    rows = assert_no_formula(path.read_text(encoding="utf-8"))
    assert any(row[rows[0].index("model")] == "'" + HOSTILE[0] for row in rows[1:])


@pytest.mark.parametrize("value", HOSTILE)
def test_every_trigger_is_neutralised_and_numbers_stay_numbers(value):
    assert neutralise(value) == "'" + value
    assert neutralise("Model A") == "Model A"
    assert neutralise(-12.5) == -12.5 and neutralise(None) is None
