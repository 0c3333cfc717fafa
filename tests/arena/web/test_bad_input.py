"""Bad input gets a clear 4xx (or a line-numbered import error) and stores nothing.

From a security review: JSON bodies with non-finite numbers, deep nesting or megabytes; an oversized
prompt in an import file; CSV quoting that swallows the rows after it; campaign files with missing or
malformed dimensions and models; scores that are not plain whole numbers; scales of thousands of
points; model names that differ from another only by invisible characters. docs/reliability.md,
"Bad input", lists what each input got before and after.
"""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client

from arena.core.errors import ArenaError
from arena.core.json_body import MAX_JSON_DEPTH
from arena.models import MAX_SCALE_POINTS, Campaign, Dimension, ModelEntry, Prompt, Ranking, Vote
from arena.services.imports import ImportFailed, import_file, load_campaign, parse_prompt_file
from arena.services.imports.rows import MAX_PROMPT_TEXT, MAX_TEXT
from arena.services.votes import clean_scores
from tests.factories import make_campaign

pytestmark = pytest.mark.django_db

CSRF = "k" * 32
MB = 1024 * 1024


# --- JSON bodies -----------------------------------------------------------------------------------


class Voter:
    """A browser with a CSRF cookie, an open battle in a scored campaign and an open ranking task."""

    def __init__(self) -> None:
        make_campaign(slug="scored", dimensions=("helpfulness",))
        make_campaign(slug="ranked", task="ranking", ranking_size=3)
        self.client = Client()
        self.client.cookies["csrftoken"] = CSRF
        self.battle = self.post("/api/v1/campaigns/scored/battles", "").json()["id"]
        self.ranking = self.post("/api/v1/campaigns/ranked/rankings", "").json()["id"]

    def post(self, url: str, body: str | bytes):
        return self.client.post(
            url, body, content_type="application/json", HTTP_X_CSRFTOKEN=CSRF, HTTP_ACCEPT="application/json"
        )

    def url(self, endpoint: str) -> str:
        return endpoint.format(battle=self.battle, ranking=self.ranking)

    def stored_nothing(self) -> bool:
        return not Vote.objects.exists() and Ranking.objects.get(pk=self.ranking).status == Ranking.Status.OPEN


VOTES = ["/b/{battle}/vote", "/api/v1/battles/{battle}/vote"]  # the page's JSON path, the JSON API
RANKINGS = ["/r/{ranking}/submit", "/api/v1/rankings/{ranking}/submit"]
VOTE = '{"verdict": "left", "scores": {"helpfulness": {"left": 4}}, "duration_ms": 1200'
RANK = '{"order": ["A", "B", "C"], "duration_ms": 1200'


def _bad_number_cases():
    for endpoint in VOTES:
        yield endpoint, '{"verdict": "left", "duration_ms": 1e400}'
        yield endpoint, '{"verdict": "left", "scores": {"helpfulness": {"left": 1e400}}}'
        yield endpoint, '{"verdict": "left", "scores": {"helpfulness": {"left": -Infinity}}}'
        yield endpoint, '{"verdict": "left", "duration_ms": NaN}'
    for endpoint in RANKINGS:
        yield endpoint, '{"order": ["A", "B", "C"], "duration_ms": 1e400}'
        yield endpoint, '{"order": ["A", "B", "C"], "duration_ms": NaN}'


@pytest.mark.parametrize("endpoint, body", list(_bad_number_cases()))
def test_json_numbers_that_are_not_finite_get_a_400_and_store_nothing(endpoint, body):
    """1e400 parses to infinity: int() of it raised OverflowError, a 500 on the pages' JSON paths."""
    voter = Voter()
    response = voter.post(voter.url(endpoint), body)
    assert response.status_code == 400, response.content[:300]
    assert response.json() == {"error": "bad_request", "message": response.json()["message"]}
    assert "finite" in response.json()["message"]
    assert voter.stored_nothing()


def _deep(depth: int, inner: str) -> str:
    return '{"a": ' * depth + inner + "}" * depth


@pytest.mark.parametrize("endpoint", VOTES + RANKINGS)
@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000 + "]" * 100_000,  # RecursionError in json.loads: a 500 on the pages' JSON paths
        '{"verdict": "left", "order": ["A"], "scores": ' + _deep(100_000, "1") + "}",
        '{"verdict": "left", "order": ["A"], "scores": ' + _deep(MAX_JSON_DEPTH, "1") + "}",  # parses, too deep
    ],
    ids=["array-100000", "object-100000", "object-limit"],
)
def test_deeply_nested_json_gets_a_400_and_stores_nothing(endpoint, body):
    voter = Voter()
    response = voter.post(voter.url(endpoint), body)
    assert response.status_code == 400, response.content[:300]
    assert f"nested more than {MAX_JSON_DEPTH} levels deep" in response.json()["message"]
    assert voter.stored_nothing()


def test_json_nested_up_to_the_limit_still_reaches_the_view():
    voter = Voter()
    body = '{"verdict": "left", "scores": ' + _deep(MAX_JSON_DEPTH - 1, "1") + "}"  # and the outer object
    response = voter.post(voter.url(VOTES[0]), body)
    assert response.status_code == 400
    assert "Unknown dimension" in response.json()["message"]  # the view's own check, not the body's


@pytest.mark.parametrize("endpoint", VOTES + RANKINGS)
def test_a_body_of_3_mb_gets_a_413_json_error_and_stores_nothing(endpoint):
    """Before: Django's RequestDataTooBig, an HTML 400 page (and a traceback in the security log)."""
    voter = Voter()
    body = json.dumps({"verdict": "left", "order": ["A", "B", "C"], "padding": "x" * (3 * MB)})
    response = voter.post(voter.url(endpoint), body)
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "too_large"
    assert "2.5 MB" in response.json()["message"]
    assert voter.stored_nothing()


def test_any_body_sent_to_the_api_is_held_to_the_json_rules_whatever_its_content_type():
    voter = Voter()
    url = voter.url(VOTES[1])
    response = voter.client.post(url, "x" * (3 * MB), content_type="text/plain", HTTP_X_CSRFTOKEN=CSRF)
    assert response.status_code == 413
    response = voter.client.post(url, "[" * 100_000, content_type="text/plain", HTTP_X_CSRFTOKEN=CSRF)
    assert response.status_code == 400
    assert voter.stored_nothing()


@pytest.mark.parametrize("endpoint, body", [(e, VOTE + "}") for e in VOTES] + [(e, RANK + "}") for e in RANKINGS])
def test_good_json_bodies_still_work(endpoint, body):
    voter = Voter()
    response = voter.post(voter.url(endpoint), body)
    assert response.status_code == 200, response.content[:300]


def test_forms_are_not_touched_by_the_json_rules(alice):
    campaign = make_campaign(slug="form", dimensions=("helpfulness",))
    page = alice.get(f"/c/{campaign.slug}/vote/")
    battle = page.content.decode().split('action="/b/')[1].split("/vote")[0]
    response = alice.post(f"/b/{battle}/vote", {"verdict": "left", "duration_ms": "1e400", "note": "[" * 1000})
    assert response.status_code == 302  # an unreadable duration is dropped, as before
    assert Vote.objects.get().duration_ms is None


# --- scores ----------------------------------------------------------------------------------------


@pytest.fixture
def helpfulness(db) -> list[Dimension]:
    return list(make_campaign(slug="dims", dimensions=("helpfulness",)).dimensions.all())


@pytest.mark.parametrize(
    "value",
    [3.9, "3.9", 4.5, "\u0663", "\uff13", "\u00b3", "3\u200b", True, float("inf"), float("nan"), [3], {"n": 3}, "1e0"],
    ids=[
        "float",
        "float-text",
        "half",
        "arabic-indic",
        "fullwidth",
        "superscript",
        "zero-width",
        "bool",
        "inf",
        "nan",
        "list",
        "object",
        "exponent",
    ],
)
def test_a_score_that_is_not_a_plain_whole_number_is_refused(helpfulness, value):
    """Before: int() truncated 3.9 to 3, read "\u0663" (ARABIC-INDIC DIGIT THREE) as 3, True as 1."""
    with pytest.raises(ArenaError, match=r"Helpfulness: .* is not a whole number"):
        clean_scores(helpfulness, {"helpfulness": {"left": value}})


@pytest.mark.parametrize("value, stored", [(3, 3), ("3", 3), (" 4 ", 4), (4.0, 4), ("-0", 0), ("+2", 2)])
def test_plain_whole_numbers_are_scores(helpfulness, value, stored):
    scale = helpfulness[0]
    scale.scale_min = -1
    assert clean_scores(helpfulness, {"helpfulness": {"left": value}}) == {"helpfulness": {"left": stored}}


def test_a_huge_score_value_is_not_echoed_back(helpfulness):
    with pytest.raises(ArenaError) as refused:
        clean_scores(helpfulness, {"helpfulness": {"left": "9" * 100_000}})
    assert len(refused.value.message) < 200
    with pytest.raises(ArenaError) as refused:
        clean_scores(helpfulness, {"x" * 100_000: {"left": 3}})
    assert len(refused.value.message) < 200


def test_a_form_score_in_other_digits_gets_a_400_and_stores_nothing(alice):
    campaign = make_campaign(slug="form", dimensions=("helpfulness",))
    page = alice.get(f"/c/{campaign.slug}/vote/")
    battle = page.content.decode().split('action="/b/')[1].split("/vote")[0]
    for value in ("\u0663", "3.9"):
        form = {"verdict": "left", "score-helpfulness-left": value}
        response = alice.post(f"/b/{battle}/vote", form, HTTP_ACCEPT="application/json")
        assert response.status_code == 400
        assert "is not a whole number" in response.json()["message"]
    assert not Vote.objects.exists()


# --- dimension scales ------------------------------------------------------------------------------


@pytest.mark.parametrize("low, high", [(1, 1000), (-32768, 32767), (0, MAX_SCALE_POINTS)])
def test_a_scale_with_more_points_than_the_bound_is_refused(campaign, low, high):
    """Before: accepted; a 1-32767 scale rendered 65,534 radio buttons per battle (about 10 MB)."""
    with pytest.raises(ValidationError, match=f"at most {MAX_SCALE_POINTS} points"):
        Dimension(campaign=campaign, key="wide", label="Wide", scale_min=low, scale_max=high).full_clean()


@pytest.mark.parametrize("low, high", [(1, 5), (0, MAX_SCALE_POINTS - 1), (-5, 5)])
def test_usual_scales_are_fine(campaign, low, high):
    Dimension(campaign=campaign, key="usual", label="Usual", scale_min=low, scale_max=high).full_clean()


def test_the_admin_refuses_a_wide_scale(staff_client, campaign):
    form = {
        "campaign": campaign.pk,
        "key": "wide",
        "label": "Wide",
        "help_text": "",
        "scale_min": 1,
        "scale_max": 30000,
        "order": 0,
    }
    response = staff_client.post("/admin/arena/dimension/add/", form)
    assert response.status_code == 200  # the form again, with the error
    assert f"at most {MAX_SCALE_POINTS} points" in response.content.decode()
    assert not Dimension.objects.filter(key="wide").exists()


# --- campaign files --------------------------------------------------------------------------------


def _spec(**changes) -> dict:
    spec = {
        "slug": "from-file",
        "title": "From a file",
        "status": "active",
        "dimensions": [{"key": "helpfulness", "label": "Helpfulness", "scale_min": 1, "scale_max": 5}],
        "models": [{"name": "Alpha"}, {"name": "Beta"}],
        "prompts": [{"id": "p1", "prompt": "Why?", "responses": {"Alpha": "Because.", "Beta": "So."}}],
    }
    spec.update(changes)
    return spec


BAD_CAMPAIGNS = {
    "dimension without key": (_spec(dimensions=[{"label": "Helpfulness"}]), 'dimension 1: give a "key"'),
    "model without name": (_spec(models=[{"name": "Alpha"}, {"backend": "static"}]), "model 2: give a name"),
    "scale_min > scale_max": (
        _spec(dimensions=[{"key": "h", "label": "H", "scale_min": 5, "scale_max": 1}]),
        "dimension 'h': The top of the scale must be above its bottom.",
    ),
    "non-slug key": (
        _spec(dimensions=[{"key": "not a slug!", "label": "H"}]),
        "dimension 'not a slug!': key: Enter a valid “slug”",
    ),
    "300-character label": (
        _spec(dimensions=[{"key": "h", "label": "L" * 300}]),
        "dimension 'h': label: Ensure this value has at most 100 characters (it has 300).",
    ),
    "wide scale": (
        _spec(dimensions=[{"key": "h", "label": "H", "scale_min": 1, "scale_max": 10_000}]),
        f"dimension 'h': A scale has at most {MAX_SCALE_POINTS} points",
    ),
    "dimension not an object": (_spec(dimensions=["helpfulness"]), "dimension 1: expected an object"),
    "unknown dimension field": (
        _spec(dimensions=[{"key": "h", "label": "H", "colour": "red"}]),
        "dimension 'h': unknown fields colour",
    ),
    "same key twice": (_spec(dimensions=[{"key": "h"}, {"key": "h"}]), "dimension 2: key 'h' also given"),
    "model not an object": (_spec(models=["Alpha"]), "model 1: expected an object"),
    "long model name": (_spec(models=[{"name": "M" * 300}]), "model 1: name is longer than 100 characters"),
    "300-character title": (_spec(title="T" * 300), "campaign: title: Ensure this value has at most 200"),
    "bad slug": (_spec(slug="not a slug!"), "campaign: slug: Enter a valid “slug”"),
    "not a number": (_spec(vote_limit="many"), "campaign: vote_limit:"),
}


@pytest.mark.parametrize("case", list(BAD_CAMPAIGNS))
def test_a_bad_campaign_file_is_a_clear_error_and_stores_nothing(case, tmp_path):
    """Before: KeyError, IntegrityError or DataError tracebacks, or the bad values stored."""
    spec, message = BAD_CAMPAIGNS[case]
    models_before = set(ModelEntry.objects.values_list("name", flat=True))
    with pytest.raises(ImportFailed) as failed:
        load_campaign(spec)
    assert any(line.startswith(message) for line in failed.value.errors), failed.value.errors
    assert not Campaign.objects.exists() and not Dimension.objects.exists() and not Prompt.objects.exists()
    assert set(ModelEntry.objects.values_list("name", flat=True)) == models_before
    path = tmp_path / "campaign.json"
    path.write_text(json.dumps(spec))
    with pytest.raises(CommandError, match="Nothing was imported"):
        call_command("load_campaign", str(path))


def test_every_problem_of_a_campaign_file_is_listed_at_once():
    spec = _spec(models=[{}], dimensions=[{"label": "x"}, {"key": "ok", "scale_min": 3, "scale_max": 2}])
    with pytest.raises(ImportFailed) as failed:
        load_campaign(spec)
    assert [line.split(":")[0] for line in failed.value.errors] == ["model 1", "dimension 1", "dimension 'ok'"]


def test_a_good_campaign_file_still_loads_and_reloads():
    campaign, summary = load_campaign(_spec())
    assert summary.prompts_created == 1
    assert [(d.key, d.scale_min, d.scale_max) for d in campaign.dimensions.all()] == [("helpfulness", 1, 5)]
    campaign, summary = load_campaign(_spec(title="Renamed", dimensions=[{"key": "helpfulness", "scale_max": 7}]))
    assert (Campaign.objects.get().title, summary.prompts_unchanged) == ("Renamed", 1)
    assert [(d.key, d.label, d.scale_max) for d in campaign.dimensions.all()] == [("helpfulness", "helpfulness", 7)]
    assert sorted(campaign.contenders.values_list("name", flat=True)) == ["Alpha", "Beta"]


# --- import files ----------------------------------------------------------------------------------


def _line(record: dict) -> bytes:
    return json.dumps(record).encode() + b"\n"


@pytest.mark.parametrize("size", [MAX_TEXT + 1, 20 * MB])
def test_a_plain_prompt_longer_than_the_text_limit_is_refused_by_line(size):
    """Before: only message lists were held to MAX_TEXT; a 20 MB "prompt" was stored and served."""
    data = _line({"external_id": "ok", "prompt": "fine"}) + _line({"external_id": "big", "prompt": "x" * size})
    with pytest.raises(ImportFailed) as failed:
        parse_prompt_file("p.jsonl", data)
    assert failed.value.errors == [f"line 2: the prompt is longer than {MAX_TEXT} characters"]


def test_a_prompt_whose_messages_together_are_too_long_is_refused():
    turn = "x" * MAX_TEXT
    messages = [{"role": role, "content": turn} for _ in range(4) for role in ("user", "assistant")][:-1]
    assert sum(len(m["content"]) for m in messages) > MAX_PROMPT_TEXT
    with pytest.raises(ImportFailed) as failed:
        parse_prompt_file("p.jsonl", _line({"external_id": "long", "messages": messages}))
    assert failed.value.errors == [f"line 1: the messages are longer than {MAX_PROMPT_TEXT} characters together"]


def test_an_oversized_prompt_stores_nothing(campaign):
    before = Prompt.objects.count()
    data = _line({"external_id": "new", "prompt": "fine"}) + _line({"external_id": "big", "prompt": "x" * 5 * MB})
    with pytest.raises(ImportFailed):
        import_file(campaign, "p.jsonl", data)
    assert Prompt.objects.count() == before


CSV_QUOTING = {
    "unclosed quote": (b'external_id,prompt\np1,fine\np2,"Unclosed\np3,Hello\np4,World\n', 3),
    "text after a closing quote": (b'external_id,prompt\np1,fine\np2,"He said "hi" to me"\np3,Hello\n', 3),
    "quote closed on a later row": (b'external_id,prompt\np1,fine\np2,"Say ""hi""\np3,Hello\np4,"World"\n', 3),
}


@pytest.mark.parametrize("case", list(CSV_QUOTING))
def test_a_csv_quoting_error_is_refused_with_the_line_of_its_row(case):
    """Before: the rows after an unclosed quote were merged into one prompt, silently."""
    data, line = CSV_QUOTING[case]
    with pytest.raises(ImportFailed) as failed:
        parse_prompt_file("p.csv", data)
    assert failed.value.errors[0].startswith(f"line {line}: not valid CSV"), failed.value.errors
    assert "quote" in failed.value.errors[0]


def test_quoted_multiline_prompts_are_still_fine():
    rows = parse_prompt_file("p.csv", b'external_id,prompt\np1,"Two\nlines, and ""quotes"""\np2,plain\n')
    assert [(r.line, r.messages[0]["content"]) for r in rows] == [(3, 'Two\nlines, and "quotes"'), (4, "plain")]


# --- model names -----------------------------------------------------------------------------------

INVISIBLE = {
    "zero-width space": "Alpha\u200b",
    "zero-width joiner": "Al\u200dpha",
    "word joiner": "\u2060Alpha",
    "soft hyphen": "Al\u00adpha",
    "right-to-left mark": "Alpha\u200f",
    "byte order mark": "\ufeffAlpha",
    "variation selector": "Alpha\ufe0f",
    "hangul filler": "Alpha\u3164",
    "no-break space": "Alpha\u00a07B",
    "tag character": "Alpha\U000e0041",
}


@pytest.mark.parametrize("name", list(INVISIBLE.values()), ids=list(INVISIBLE))
def test_a_model_name_with_invisible_characters_is_refused_by_the_admin_rule(db, name):
    ModelEntry.objects.create(name="Alpha")
    with pytest.raises(ValidationError, match="invisible"):
        ModelEntry(name=name).full_clean()


def test_a_name_differing_from_an_existing_one_only_invisibly_is_refused(db):
    ModelEntry.objects.create(name="Gam\u200bma")  # stored before this rule
    with pytest.raises(ValidationError) as refused:
        ModelEntry(name="Gamma").full_clean()
    assert refused.value.message_dict["name"] == [
        "This name differs from the model 'Gam\\u200bma' only by invisible characters."
    ]
    ModelEntry.objects.create(name="Caf\u00e9")  # composed; the same text decomposed differs invisibly
    with pytest.raises(ValidationError, match="only by invisible"):
        ModelEntry(name="Cafe\u0301").full_clean()


def test_the_admin_form_refuses_an_invisible_twin(staff_client):
    ModelEntry.objects.create(name="Alpha")
    form = {
        "name": "Alpha\u200b",
        "backend": "static",
        "backend_settings": "{}",
        "params": "{}",
        "weight": "1.0",
        "is_active": "on",
        "created_at_0": "2025-01-01",
        "created_at_1": "00:00:00",
    }
    response = staff_client.post("/admin/arena/modelentry/add/", form)
    assert response.status_code == 200
    assert "invisible" in response.content.decode()
    assert ModelEntry.objects.count() == 1


def test_an_import_adding_an_invisible_twin_is_refused_and_stores_nothing(campaign):
    models_before = ModelEntry.objects.count()
    data = _line({"external_id": "p9", "prompt": "Hi?", "responses": {"Alpha": "One.", "Alpha\u200b": "Two."}})
    with pytest.raises(ImportFailed) as failed:
        import_file(campaign, "p.jsonl", data, options=_add_models())
    assert failed.value.errors[0].startswith("line 1: model name 'Alpha\\u200b'")
    assert ModelEntry.objects.count() == models_before and not Prompt.objects.filter(external_id="p9").exists()


def test_an_import_may_still_add_new_models_and_reuse_existing_ones(campaign):
    ModelEntry.objects.create(name="Delta")
    data = _line({"external_id": "p9", "prompt": "Hi?", "responses": {"Delta": "One.", "Épsilon 2": "Two."}})
    summary = import_file(campaign, "p.jsonl", data, options=_add_models())
    assert summary.models_added == ["Delta", "Épsilon 2"]


def test_a_campaign_file_naming_an_invisible_twin_is_refused(db):
    ModelEntry.objects.create(name="Beta")
    with pytest.raises(ImportFailed) as failed:
        load_campaign(_spec(models=[{"name": "Alpha"}, {"name": "Be\u200bta"}]))
    assert failed.value.errors == [
        "model 'Be\\u200bta': name: A model name may not contain invisible characters (U+200B ZERO WIDTH SPACE)."
    ]
    assert not ModelEntry.objects.filter(name="Alpha").exists()


def _add_models():
    from arena.services.imports import ImportOptions

    return ImportOptions(add_models=True)
