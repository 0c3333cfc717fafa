"""Charts a reader can read: the leaderboard's interval chart and the dashboard's votes chart have
axes, ticks and their numbers; the leaderboard says what "provisional" means."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from arena.leaderboards.presentation import interval_chart
from arena.leaderboards.snapshots import compute_snapshots
from arena.models import Vote
from arena.services.dashboard import votes_over_time
from ratings.axes import nice_ticks, tick_label
from tests.arena.leaderboards.test_leaderboards import cast_votes
from tests.factories import make_campaign

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("low", "high", "count", "ticks"),
    [
        (896, 1113, 5, [850, 900, 950, 1000, 1050, 1100, 1150]),
        (0, 150, 4, [0, 50, 100, 150]),
        (0, 1, 4, [0, 0.25, 0.5, 0.75, 1]),
        (0, 3, 4, [0, 1, 2, 3]),
        (1000, 1000, 5, [1000, 1000.0000000002]),
    ],
)
def test_ticks_are_round_and_cover_the_range(low, high, count, ticks):
    got = nice_ticks(low, high, count, integer=high - low >= 3)
    assert got[0] <= low and got[-1] >= high
    if len(ticks) > 2:
        assert got == ticks


def test_integer_ticks_never_split_a_vote():
    assert nice_ticks(0, 2, 4, integer=True) == [0, 1, 2]
    assert [tick_label(t) for t in (1000.0, 2.5, 0.05, -0.0)] == ["1000", "2.5", "0.05", "0"]


def test_the_interval_chart_places_lines_and_ticks_in_percent():
    rows = [
        {"model": "a", "rating": 1040, "ci_low": 990, "ci_high": 1100, "provisional": False},
        {"model": "b", "rating": 960, "ci_low": 900, "ci_high": 1010, "provisional": True},
        {"model": "unrated", "rating": None, "ci_low": None, "ci_high": None},
    ]
    chart = interval_chart(rows)
    assert [b["model"] for b in chart["bars"]] == ["a", "b"]
    assert [t["label"] for t in chart["ticks"]] == ["900", "950", "1000", "1050", "1100"]
    assert chart["ticks"][0]["x"] == 0 and chart["ticks"][-1]["x"] == 100
    a = chart["bars"][0]
    assert (a["x1"], a["cx"], a["x2"]) == (45.0, 70.0, 100.0)
    assert chart["bars"][1]["provisional"] and interval_chart([]) == {"bars": [], "ticks": []}


def test_the_leaderboard_explains_provisional_models_and_draws_an_axis(alice):
    campaign = make_campaign(slug="few", models=("A", "B", "C"), prompts=4)
    cast_votes(campaign, 15)  # 10 votes a model on average, 15 at most: every model is provisional (min_votes 20)
    compute_snapshots(campaign)
    html = alice.get("/c/few/leaderboard/").content.decode()
    note = re.search(r'<p id="provisional-note">(.*?)</p>', html, re.S).group(1)
    assert "3 of 3 models are provisional" in note and "fewer than 20 votes" in note and "no rank" in note
    chart = html[html.index('id="interval-chart"') :]
    assert chart.count('class="ic-row provisional"') == 3
    assert len(re.findall(r'class="ic-tick-label"[^>]*>\d+</text>', chart)) >= 3  # the axis has numbers
    assert re.search(r"<title>A: rating -?\d+, 95% interval -?\d+ to -?\d+</title>", chart)  # values on hover
    assert re.search(r'class="ic-value num">-?\d+ <span class="muted">\(-?\d+\u2013-?\d+\)', chart)  # and beside it


def test_a_ranked_board_still_says_what_provisional_means(alice):
    campaign = make_campaign(slug="many", models=("A", "B"), prompts=6)
    cast_votes(campaign, 45)
    compute_snapshots(campaign)
    html = alice.get("/c/many/leaderboard/").content.decode()
    assert "provisional</em> while it has fewer than 20 votes" in html
    assert 'class="ic-row provisional"' not in html


def test_the_votes_chart_has_axes_and_an_hour_for_every_hour(campaign):
    cast_votes(campaign, 6)
    now = timezone.now()
    Vote.objects.filter(pk=Vote.objects.order_by("pk").first().pk).update(created_at=now - timedelta(hours=5))
    chart = votes_over_time(campaign, now=now)
    assert chart["unit"] == "hour" and len(chart["bars"]) == 6 and chart["total"] == 6
    assert [b["n"] for b in chart["bars"]] == [1, 0, 0, 0, 0, 5]
    assert [t["label"] for t in chart["y_ticks"]] == ["0", "2", "4", "6"]
    assert chart["x_labels"][0]["text"].endswith(":00") and len(chart["x_labels"]) == 6
    assert max(b["width"] for b in chart["bars"]) <= 36  # bars, not a solid block
    bottom = chart["bottom"]
    assert all(abs(b["y"] + b["height"] - bottom) < 0.2 for b in chart["bars"])


def test_a_single_hour_of_votes_is_one_narrow_bar(campaign):
    cast_votes(campaign, 3)
    chart = votes_over_time(campaign)
    assert len(chart["bars"]) == 1 and chart["bars"][0]["width"] == 36


def test_older_campaigns_are_drawn_per_day(campaign):
    cast_votes(campaign, 4)
    now = timezone.now()
    Vote.objects.filter(pk=Vote.objects.order_by("pk").first().pk).update(created_at=now - timedelta(days=9))
    chart = votes_over_time(campaign, now=now)
    assert chart["unit"] == "day" and len(chart["bars"]) == 10 and sum(b["n"] for b in chart["bars"]) == 4


def test_the_dashboard_draws_the_axes_and_lists_the_numbers(staff_client, campaign):
    cast_votes(campaign, 5)
    html = staff_client.get(f"/staff/c/{campaign.slug}/").content.decode()
    svg = html[html.index('id="votes-chart"') : html.index("</svg>", html.index('id="votes-chart"'))]
    assert 'class="chart-axis"' in svg and ">votes</text>" in svg and "hour (UTC)" in svg
    assert re.search(r"<title>\d{4}-\d\d-\d\d \d\d:00: 5 votes</title>", svg)
    assert re.search(r'<table class="board" id="votes-table">.*<td class="num">5</td>', html, re.S)
