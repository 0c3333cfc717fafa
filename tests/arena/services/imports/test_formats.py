"""Imports of TRL preference pairs and arena battle records, and what every format becomes.

Round trips go through the real exporters (`arena.exports.writer.write_export`) into a new campaign.
Both write paths (PostgreSQL COPY and ORM bulk operations) are checked to store the same thing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction

from arena.exports.filters import ExportFilters
from arena.exports.writer import write_export
from arena.models import Battle, Campaign, Item, ModelEntry, Prompt, Response, Vote, Voter
from arena.rendering import render_markdown
from arena.services.imports import ImportFailed, ImportOptions, import_file, import_prompts, parse_prompt_file
from arena.services.items import create_items
from tests.factories import make_campaign
from tests.modes import postgres_only

POSTGRES_COPY = postgres_only("COPY and SET CONSTRAINTS are PostgreSQL's bulk-import path")
COPY = pytest.param(True, marks=POSTGRES_COPY)

SYSTEM = {"role": "system", "content": "Answer briefly."}


def jsonl(*records) -> bytes:
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode()


def stored(campaign: Campaign) -> dict:
    """external_id -> (messages, category, language, {model: content}) of a campaign."""
    result = {}
    for prompt in campaign.prompts.prefetch_related("responses__model"):
        answers = {r.model.name: r.content for r in prompt.responses.all() if r.status == Response.Status.DONE}
        result[prompt.external_id] = (prompt.messages, prompt.category, prompt.language, answers)
    return result


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


@pytest.fixture
def target(db):
    return make_campaign(slug="target", models=("Alpha", "Beta", "Gamma"), prompts=0)


# --- TRL --------------------------------------------------------------------------------------------------


def test_trl_pairs_become_prompts_with_the_named_models_answers(target):
    data = jsonl(
        {
            "prompt": [SYSTEM, user("Capital of Australia?")],
            "chosen": [assistant("Canberra.")],
            "rejected": [assistant("Sydney.")],
            "question_id": "geo-1",
            "chosen_model": "Beta",
            "rejected_model": "Alpha",
            "category": "facts",
            "language": "en",
            "margin": 0.5,
        },
        {
            "prompt": [SYSTEM, user("Capital of Australia?")],
            "chosen": [assistant("Canberra.")],
            "rejected": [assistant("Perth, probably.")],
            "question_id": "geo-1",
            "chosen_model": "Beta",
            "rejected_model": "Gamma",
            "category": "facts",
            "language": "en",
        },
    )
    summary = import_file(target, "pairs.jsonl", data)
    assert stored(target) == {
        "geo-1": (
            [SYSTEM, user("Capital of Australia?")],
            "facts",
            "en",
            {"Alpha": "Sydney.", "Beta": "Canberra.", "Gamma": "Perth, probably."},
        ),
    }
    assert (summary.prompts_created, summary.responses_written) == (1, 3)
    assert Item.objects.filter(campaign=target).count() == 3  # every pair of the three answers can be handed out
    response = Response.objects.get(prompt__campaign=target, model__name="Alpha")
    assert response.html == render_markdown("Sydney.")
    assert response.source == Response.Source.IMPORTED


def test_trl_records_without_model_names_take_the_options_and_can_add_the_models(target):
    data = jsonl({"prompt": "Say hi", "chosen": "Hi!", "rejected": "Go away."})
    with pytest.raises(ImportFailed) as failed:
        import_file(target, "pairs.jsonl", data)
    assert failed.value.errors[0].startswith("line 1: model 'chosen' is not in this campaign")
    assert "option to add models" in failed.value.errors[0]

    options = ImportOptions(chosen_model="Alpha", rejected_model="Beta")
    import_file(target, "pairs.jsonl", data, options)
    [(messages, _, _, answers)] = stored(target).values()
    assert messages == [user("Say hi")] and answers == {"Alpha": "Hi!", "Beta": "Go away."}

    other = make_campaign(slug="other", models=(), prompts=0)
    summary = import_file(other, "pairs.jsonl", data, ImportOptions(add_models=True))
    assert summary.models_added == ["chosen", "rejected"]
    assert set(other.contenders.values_list("name", flat=True)) == {"chosen", "rejected"}
    assert ModelEntry.objects.get(name="chosen").backend == "static"
    assert Item.objects.filter(campaign=other).count() == 1


def test_trl_implicit_prompts_are_the_shared_start_of_both_conversations(target):
    conversation = [SYSTEM, user("2+2?"), assistant("4"), user("And 3+3?")]
    data = jsonl(
        {
            "chosen": [*conversation, assistant("6")],
            "rejected": [*conversation, assistant("7")],
            "chosen_model": "Alpha",
            "rejected_model": "Beta",
        }
    )
    import_file(target, "pairs.jsonl", data)
    [(messages, _, _, answers)] = stored(target).values()
    assert messages == conversation and answers == {"Alpha": "6", "Beta": "7"}

    diverging = jsonl({"chosen": [user("a"), assistant("b")], "rejected": [user("c"), assistant("d")]})
    with pytest.raises(ImportFailed) as failed:
        parse_prompt_file("p.jsonl", diverging)
    assert failed.value.errors == ["line 1: chosen and rejected differ before their last answers (no shared prompt)"]


def test_trl_prompts_without_ids_get_stable_ids_so_reimports_match(target):
    first = {
        "prompt": "Same question",
        "chosen": "A",
        "rejected": "B",
        "chosen_model": "Alpha",
        "rejected_model": "Beta",
    }
    second = {**first, "chosen": "A2", "rejected": "B2"}  # the same prompt again, other answers
    data = jsonl(first, {"prompt": "Other", "chosen": "C", "rejected": "D"} | first | {"prompt": "Other"}, second)
    import_file(target, "pairs.jsonl", data)
    ids = sorted(target.prompts.values_list("external_id", flat=True))
    assert len(ids) == 3 and all(i.startswith("trl-") for i in ids)
    assert sum(1 for i in ids if i.endswith("-2")) == 1  # the repeated prompt is a second prompt
    summary = import_file(target, "pairs.jsonl", data)
    assert (summary.prompts_created, summary.prompts_unchanged, summary.responses_written) == (0, 3, 0)


# --- battles ----------------------------------------------------------------------------------------------


def battle(qid, a, b, answer_a, answer_b, prompt=None, **extra):
    prompt = prompt or [user(f"Question {qid}?")]
    return {
        "question_id": qid,
        "model_a": a,
        "model_b": b,
        "winner": "model_a",
        "judge": "x",
        "turn": 1,
        "anony": True,
        "language": "English",
        "tstamp": 1.7e9,
        "conversation_a": [*prompt, assistant(answer_a)],
        "conversation_b": [*prompt, assistant(answer_b)],
        **extra,
    }


def test_battles_become_prompts_with_each_models_last_answer(target):
    earlier = [SYSTEM, user("Name a prime."), assistant("2"), user("Another one?")]
    data = jsonl(
        battle("q1", "Alpha", "Beta", "3", "5", prompt=earlier),
        battle("q1", "Gamma", "Alpha", "7", "3", prompt=earlier),
        battle("q2", "Beta", "Gamma", "**yes**", "no", language="unknown", category="misc"),
    )
    summary = import_file(target, "battles.jsonl", data)
    assert stored(target) == {
        "q1": (earlier, "", "English", {"Alpha": "3", "Beta": "5", "Gamma": "7"}),
        "q2": ([user("Question q2?")], "misc", "", {"Beta": "**yes**", "Gamma": "no"}),
    }
    assert (summary.prompts_created, summary.responses_written) == (2, 5)
    assert Item.objects.filter(campaign=target).count() == 3 + 1
    assert Response.objects.get(prompt__external_id="q2", model__name="Beta").html == "<p><strong>yes</strong></p>\n"


def test_battles_whose_earlier_turns_differ_are_refused_by_line(target):
    record = battle("q1", "Alpha", "Beta", "x", "y")
    record["conversation_a"] = [user("hi"), assistant("hello from A"), user("and?"), assistant("A again")]
    record["conversation_b"] = [user("hi"), assistant("hello from B"), user("and?"), assistant("B again")]
    with pytest.raises(ImportFailed) as failed:
        import_file(target, "battles.jsonl", jsonl(battle("q0", "Alpha", "Beta", "a", "b"), record))
    [error] = failed.value.errors
    assert error.startswith("line 2: conversation_a and conversation_b differ before their last answers")
    assert Prompt.objects.filter(campaign=target).count() == 0


def test_a_model_answering_one_question_twice_differently_names_both_lines(target):
    data = jsonl(battle("q1", "Alpha", "Beta", "one", "two"), battle("q1", "Alpha", "Gamma", "uno", "tres"))
    with pytest.raises(ImportFailed) as failed:
        parse_prompt_file("battles.jsonl", data)
    assert failed.value.errors == ["line 2: model 'Alpha' answers question_id 'q1' differently on line 1"]
    later = jsonl(
        battle("q1", "Alpha", "Beta", "one", "two"),
        battle("q1", "Alpha", "Gamma", "one", "three"),  # Gamma's first answer: line 2, not the prompt's line 1
        battle("q1", "Beta", "Gamma", "two", "tres"),
    )
    with pytest.raises(ImportFailed) as failed:
        parse_prompt_file("battles.jsonl", later)
    assert failed.value.errors == ["line 3: model 'Gamma' answers question_id 'q1' differently on line 2"]
    other_prompt = battle("q1", "Alpha", "Gamma", "one", "three", prompt=[user("Something else")])
    with pytest.raises(ImportFailed) as failed:
        parse_prompt_file("battles.jsonl", jsonl(battle("q1", "Alpha", "Beta", "one", "two"), other_prompt))
    assert failed.value.errors == ["line 2: question_id 'q1' has a different prompt on line 1"]


def test_line_numbers_count_newlines_only_so_unicode_line_separators_inside_texts_survive(target):
    text = "first\u2028second\u0085third"
    data = jsonl(battle("q1", "Alpha", "Beta", text, "plain"))
    import_file(target, "battles.jsonl", data)
    assert Response.objects.get(prompt__campaign=target, model__name="Alpha").content == text


# --- formats ----------------------------------------------------------------------------------------------


def test_the_format_is_detected_from_the_first_record_or_given(target):
    trl = jsonl(
        {
            "prompt": "p",
            "chosen": "a",
            "rejected": "b",
            "question_id": "t1",
            "chosen_model": "Alpha",
            "rejected_model": "Beta",
        }
    )
    battles = jsonl(battle("b1", "Alpha", "Beta", "a", "b"))
    plain = jsonl({"external_id": "j1", "prompt": "p", "responses": {"Alpha": "a"}})
    for name, data in (("x.jsonl", trl), ("x.ndjson", battles), ("x.json", plain)):
        import_file(target, name, data)
    assert set(target.prompts.values_list("external_id", flat=True)) == {"t1", "b1", "j1"}

    with pytest.raises(ImportFailed) as failed:  # read as battles, a TRL record lacks the battle fields
        parse_prompt_file("x.jsonl", trl, ImportOptions(format="battles"))
    assert failed.value.errors == ["line 1: a battle record needs model_a, model_b, conversation_a, conversation_b"]
    rows = parse_prompt_file("pairs.txt", trl, ImportOptions(format="trl"))  # any name with an explicit format
    assert rows[0].external_id == "t1"
    with pytest.raises(ImportFailed, match="unknown file type"):
        parse_prompt_file("pairs.txt", trl)
    with pytest.raises(ImportFailed) as failed:
        parse_prompt_file("list.json", b'[{"prompt": "x"}]')
    assert "jq -c" in failed.value.errors[0]


# --- round trips through the exporters --------------------------------------------------------------------


def _vote(campaign, voter, prompt, left, right, verdict, minute):
    responses = {r.model.name: r for r in prompt.responses.select_related("model")}
    battle = Battle.objects.create(
        campaign=campaign,
        voter=voter,
        prompt=prompt,
        left=responses[left],
        right=responses[right],
        status=Battle.Status.VOTED,
    )
    winner = {"left": responses[left].model, "right": responses[right].model}.get(verdict)
    Vote.objects.create(
        battle=battle,
        campaign=campaign,
        voter=voter,
        prompt=prompt,
        left_model=responses[left].model,
        right_model=responses[right].model,
        winner=winner,
        verdict=verdict,
        scores={},
        duration_ms=1000,
        created_at=datetime(2025, 3, 10, 12, minute, tzinfo=UTC),
    )


@pytest.fixture
def source(db):
    """A campaign whose answers are all in at least one decisive vote: Markdown, a system prompt,
    a prompt without external_id, a multi-turn prompt, and a tie that pairs leave out."""
    campaign = make_campaign(slug="source", models=("Alpha", "Beta", "Gamma"), prompts=3)
    p0, p1, p2 = campaign.prompts.all()
    Prompt.objects.filter(pk=p0.pk).update(messages=[SYSTEM, user("Capital of *Australia*?")], language="en")
    Prompt.objects.filter(pk=p1.pk).update(external_id="")  # exported under its database id
    Prompt.objects.filter(pk=p2.pk).update(messages=[user("Hi"), assistant("Hello!"), user("Tell a joke\u2028now")])
    for response in Response.objects.filter(prompt=p0):
        response.content = f"**{response.model.name}** says: `code` & <script>alert(1)</script>"
        response.save()
    voter = Voter.objects.create()
    for minute, prompt in enumerate(campaign.prompts.all()):
        _vote(campaign, voter, prompt, "Alpha", "Beta", "left", minute)
        _vote(campaign, voter, prompt, "Gamma", "Beta", "right", minute + 10)
        _vote(campaign, voter, prompt, "Gamma", "Alpha", "tie", minute + 20)
    return campaign


def _exported(source, fmt, tmp_path, settings) -> bytes:
    settings.ARENA_EXPORT_DIR = tmp_path
    path = tmp_path / f"export.{fmt}"
    write_export(source, fmt, ExportFilters.parse({}), path)
    return path.read_bytes()


def _same_content(source: Campaign, target: Campaign) -> None:
    expected = stored(source)
    for prompt in source.prompts.filter(external_id=""):  # exported with its id as question_id
        expected[str(prompt.pk)] = expected.pop("")
    assert stored(target) == expected
    pairs = {
        (r.prompt.external_id or str(r.prompt.pk), r.model.name): r.html
        for r in Response.objects.filter(prompt__campaign=source).select_related("prompt", "model")
    }
    for response in Response.objects.filter(prompt__campaign=target).select_related("prompt", "model"):
        assert response.html == pairs[(response.prompt.external_id, response.model.name)]
    assert Item.objects.filter(campaign=target).count() == Item.objects.filter(campaign=source).count()


@pytest.mark.parametrize("fmt", ["battles-jsonl", "trl-jsonl"])
@pytest.mark.parametrize("use_copy", [COPY, False], ids=["copy", "orm"])
def test_an_exported_campaign_imports_into_a_new_one_unchanged(source, fmt, use_copy, tmp_path, settings):
    data = _exported(source, fmt, tmp_path, settings)
    target = make_campaign(slug="copy", models=("Alpha", "Beta", "Gamma"), prompts=0)
    rows = parse_prompt_file(f"export.{fmt.split('-')[1]}", data)
    summary = import_prompts(target, rows, use_copy=use_copy)
    _same_content(source, target)
    assert (summary.prompts_created, summary.responses_written) == (3, 9)
    again = import_prompts(target, parse_prompt_file("export.jsonl", data), use_copy=use_copy)
    assert (again.prompts_created, again.prompts_updated, again.responses_written) == (0, 0, 0)
    assert (again.prompts_unchanged, again.responses_unchanged) == (3, 9)


def test_the_command_imports_a_battles_export_and_reports_errors_by_line(source, tmp_path, settings, capsys):
    path = tmp_path / "battles.jsonl"
    path.write_bytes(_exported(source, "battles-jsonl", tmp_path, settings))
    Campaign.objects.create(slug="fresh", title="Fresh")
    call_command("import_prompts", "fresh", str(path), "--format", "battles", "--add-models")
    out = capsys.readouterr().out
    assert "3 prompts created" in out and "models added to the campaign: Alpha, Beta, Gamma" in out
    _same_content(source, Campaign.objects.get(slug="fresh"))

    broken = tmp_path / "broken.jsonl"
    # Nine battles on lines 1-9, a blank line 10, then a broken record on line 11.
    broken.write_text(path.read_text(encoding="utf-8") + '\n{"question_id": "z", "model_a": "Alpha"}\n')
    with pytest.raises(CommandError) as failed:
        call_command("import_prompts", "fresh", str(broken), "--format", "battles")
    assert "line 11: a battle record needs model_b, conversation_a, conversation_b" in str(failed.value)


def test_the_command_takes_model_names_for_trl_files(target, tmp_path, capsys):
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(jsonl({"prompt": "Hi", "chosen": "Hello", "rejected": "Bye", "question_id": "h1"}))
    call_command("import_prompts", "target", str(path), "--chosen-model", "Gamma", "--rejected-model", "Alpha")
    assert stored(target)["h1"][3] == {"Gamma": "Hello", "Alpha": "Bye"}


# --- the admin page ---------------------------------------------------------------------------------------


def test_the_admin_page_imports_each_format_and_lists_errors(target, staff_client, client):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    url = reverse("admin:arena_campaign_import", args=[target.pk])
    page = staff_client.get(url)
    assert b"Battles, JSON lines" in page.content and b'name="chosen_model"' in page.content

    upload = SimpleUploadedFile("pairs.txt", jsonl({"prompt": "Hi", "chosen": "Yo", "rejected": "Bye"}))
    response = staff_client.post(
        url, {"file": upload, "format": "trl", "chosen_model": "Beta", "rejected_model": "Gamma"}
    )
    assert response.status_code == 302
    [(_, _, _, answers)] = stored(target).values()
    assert answers == {"Beta": "Yo", "Gamma": "Bye"}

    bad = SimpleUploadedFile("b.jsonl", jsonl(battle("q", "Alpha", "Alpha", "x", "y")))
    response = staff_client.post(url, {"file": bad, "format": "auto", "chosen_model": "c", "rejected_model": "r"})
    assert response.status_code == 200
    assert b"line 1: model_a and model_b are both &#x27;Alpha&#x27;" in response.content

    anonymous = client.post(url, {"file": SimpleUploadedFile("p.jsonl", b'{"prompt": "x"}'), "format": "jsonl"})
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    assert target.prompts.count() == 1


# --- both write paths -------------------------------------------------------------------------------------


@pytest.mark.parametrize("use_copy", [COPY, False], ids=["copy", "orm"])
def test_reimports_write_only_what_changed_and_replace_unfinished_responses(target, use_copy):
    first = jsonl(
        {"external_id": "a", "prompt": "A?", "responses": {"Alpha": "a1", "Beta": "b1"}},
        {"external_id": "b", "prompt": "B?", "category": "x", "responses": {"Alpha": "a2"}},
        {"prompt": "no id, no answers"},
    )
    import_prompts(target, parse_prompt_file("f.jsonl", first), use_copy=use_copy)
    untouched = Response.objects.get(prompt__external_id="a", model__name="Alpha")
    b = Prompt.objects.get(campaign=target, external_id="b")
    Response.objects.create(
        prompt=b,
        model=ModelEntry.objects.get(name="Gamma"),
        status=Response.Status.FAILED,
        error="timeout",
        cache_key="k" * 64,
    )
    second = jsonl(
        {"external_id": "a", "prompt": "A?", "responses": {"Alpha": "a1", "Beta": "b1 fixed"}},
        {"external_id": "b", "prompt": "B, reworded?", "category": "x", "responses": {"Alpha": "a2", "Gamma": "g"}},
        {"external_id": "c", "prompt": "C?", "responses": {"Gamma": "c3"}},
    )
    summary = import_prompts(target, parse_prompt_file("f.jsonl", second), use_copy=use_copy)
    assert (summary.prompts_created, summary.prompts_updated, summary.prompts_unchanged) == (1, 1, 1)
    assert (summary.responses_written, summary.responses_unchanged) == (3, 2)
    assert Response.objects.get(pk=untouched.pk).updated_at == untouched.updated_at  # not rewritten
    gamma = Response.objects.get(prompt=b, model__name="Gamma")
    assert (gamma.status, gamma.source, gamma.error, gamma.cache_key) == ("done", "imported", "", "")
    assert (gamma.content, gamma.html) == ("g", render_markdown("g"))
    assert Prompt.objects.get(pk=b.pk).messages == [user("B, reworded?")]
    assert target.prompts.count() == 4
    pairs = set(
        Item.objects.filter(campaign=target).values_list("prompt__external_id", "model_lo__name", "model_hi__name")
    )
    assert pairs == {("a", "Alpha", "Beta"), ("b", "Alpha", "Gamma")}


def test_items_are_pairs_of_done_contender_responses_and_creating_them_is_idempotent(db):
    campaign = make_campaign(slug="items", models=("Alpha", "Beta", "Gamma"), prompts=2)
    outsider = ModelEntry.objects.create(name="Outsider")
    p0, p1 = campaign.prompts.all()
    Response.objects.create(prompt=p0, model=outsider, content="x", status=Response.Status.DONE)
    Response.objects.filter(prompt=p1, model__name="Gamma").update(status=Response.Status.FAILED)
    Item.objects.filter(campaign=campaign).delete()
    create_items(campaign, [p0.pk, p1.pk])
    create_items(campaign, [p0.pk, p1.pk])
    items = list(Item.objects.filter(campaign=campaign).select_related("response_lo", "response_hi"))
    assert len(items) == 3 + 1
    for item in items:
        assert item.model_lo_id < item.model_hi_id
        assert (item.response_lo.model_id, item.response_hi.model_id) == (item.model_lo_id, item.model_hi_id)
        assert item.response_lo.prompt_id == item.response_hi.prompt_id == item.prompt_id
        assert item.vote_count == 0 and 0 <= item.shuffle < 2**31
    assert len({item.shuffle for item in items}) > 1


@POSTGRES_COPY
def test_answers_rendered_in_batches_on_a_thread_land_on_their_prompts(target, monkeypatch):
    from arena.services.imports import writer

    monkeypatch.setattr(writer, "BATCH", 2)
    data = jsonl(
        *(
            {"external_id": f"p{i}", "prompt": f"Q{i}?", "responses": {"Alpha": f"a{i}", "Gamma": f"*g{i}*"}}
            for i in range(7)
        )
    )
    summary = import_prompts(target, parse_prompt_file("f.jsonl", data), use_copy=True)
    assert summary.responses_written == 14
    for ext, (_, _, _, answers) in stored(target).items():
        assert answers == {"Alpha": f"a{ext[1:]}", "Gamma": f"*g{ext[1:]}*"}
    assert Item.objects.filter(campaign=target).count() == 7


@POSTGRES_COPY
def test_a_failure_while_rendering_writes_nothing_and_leaves_foreign_keys_deferred(target, monkeypatch):
    from arena.services.imports import writer

    def render(text):
        if text == "boom":
            raise RuntimeError("renderer failed")
        return render_markdown(text)

    monkeypatch.setattr(writer, "BATCH", 1)
    monkeypatch.setattr(writer, "render_markdown", render)
    data = jsonl(
        *(
            {"external_id": f"p{i}", "prompt": "Q?", "responses": {"Alpha": "boom" if i == 3 else "ok"}}
            for i in range(5)
        )
    )
    with pytest.raises(RuntimeError, match="renderer failed"):
        import_prompts(target, parse_prompt_file("f.jsonl", data), use_copy=True)
    assert (Prompt.objects.filter(campaign=target).count(), Item.objects.filter(campaign=target).count()) == (0, 0)

    import_prompts(target, parse_prompt_file("f.jsonl", jsonl({"external_id": "x", "prompt": "Q?"})), use_copy=True)
    # The import checked foreign keys per statement; the surrounding transaction has them deferred again.
    with transaction.atomic():
        orphan = Prompt.objects.create(campaign_id=10**9, messages=[user("?")])  # checked only at commit
        orphan.delete()
    with pytest.raises(IntegrityError), transaction.atomic():
        Prompt.objects.create(campaign_id=10**9, messages=[user("?")])
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


@pytest.mark.parametrize("use_copy", [COPY, False], ids=["copy", "orm"])
def test_prompts_written_by_another_import_meanwhile_refuse_the_import_cleanly(target, monkeypatch, use_copy):
    """Two imports of the same new prompts at once: the second one read the campaign before the first
    committed, so it takes the prompts for new. Simulated by hiding the stored prompts from it."""
    from arena.services.imports import writer

    data = jsonl({"external_id": "p1", "prompt": "Q?", "responses": {"Alpha": "a", "Beta": "b"}})
    import_prompts(target, parse_prompt_file("f.jsonl", data), use_copy=use_copy)
    before = stored(target), Item.objects.count()
    monkeypatch.setattr(writer, "_stored_prompts", lambda campaign, rows: {})
    with pytest.raises(ImportFailed) as failed:
        import_prompts(target, parse_prompt_file("f.jsonl", data), use_copy=use_copy)
    assert failed.value.errors == [writer.CONCURRENT_CHANGE]
    assert (stored(target), Item.objects.count()) == before
