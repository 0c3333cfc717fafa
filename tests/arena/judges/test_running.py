"""LLM judges: templates, position swap, failures, retries, the reply cache and self-judging.

The judge is a real local HTTP server (tests/protocol_server.py, ``prefer=`` scripts its verdicts) or
the ``static`` backend; what the server records is the ground truth for "how many calls were made".
Tasks run in-process in both passes (CELERY_TASK_ALWAYS_EAGER): `running.dispatch` judges in place.
"""

from __future__ import annotations

import re
import time

import pytest
from django.core.exceptions import ValidationError

from arena.judges import judging, planning, prompting, running
from arena.judges.models import Judge, JudgeVerdict
from arena.models import ModelEntry, Prompt, Response
from tests.factories import make_campaign
from tests.protocol_server import ProtocolServer

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def server():
    with ProtocolServer() as server:
        yield server


@pytest.fixture
def judge_api(server, settings):
    server.reset()
    settings.ARENA_GENERATION_RETRY_BACKOFF = 0.01
    return server


def api_judge(server, campaign, model: str, name: str = "Referee", params: dict | None = None, **extra) -> Judge:
    backend_settings = {"base_url": server.base_url, "model": model, "max_retries": 0, **extra}
    entry = ModelEntry.objects.create(
        name=name, backend="openai", backend_settings=backend_settings, params=params or {}
    )
    return Judge.objects.create(campaign=campaign, model=entry)


def static_judge(campaign, text: str, name: str = "Always-A", **fields) -> Judge:
    entry = ModelEntry.objects.create(name=name, backend="static", backend_settings={"text": text})
    return Judge.objects.create(campaign=campaign, model=entry, **fields)


def run(judge: Judge, **kw) -> planning.Plan:
    result = planning.plan(judge, **kw)
    running.dispatch(judge.pk)
    return result


# -- templates ---------------------------------------------------------------------------------------


def test_a_template_without_the_answers_is_refused_on_save(campaign):
    entry = ModelEntry.objects.create(name="J", backend="static")
    judge = Judge(campaign=campaign, model=entry, template="Compare {conversation} and {answer_a}.")
    with pytest.raises(ValidationError) as error:
        judge.full_clean()
    assert "{answer_b}" in str(error.value)
    with pytest.raises(prompting.TemplateError):
        judge.save()
    assert not Judge.objects.exists()


def test_unknown_placeholders_are_refused_and_the_default_template_is_valid():
    with pytest.raises(prompting.TemplateError, match=r"\{answr_b\}"):
        prompting.validate_template("{conversation} {answer_a} {answr_b} {answer_b}")
    prompting.validate_template(prompting.DEFAULT_TEMPLATE)


def test_rendering_is_one_pass_so_answers_cannot_inject_placeholders():
    messages = prompting.render(
        "Q: {conversation}\nA: {answer_a}\nB: {answer_b}\n{verdict_options}",
        [{"role": "user", "content": "hi {answer_b}"}],
        "first {answer_b}",
        "second",
        letters=("A", "B", "C"),
    )
    text = messages[0]["content"]
    assert "User: hi {answer_b}" in text and "A: first {answer_b}" in text and "B: second" in text
    assert "[[D]]" not in text and "[[C]]" in text


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Reasoning... [[A]]", "A"),
        ("B is wrong, so [[A]] or [[B]]? Final: [[B]].", "B"),
        ("**[[C]]**\n", "C"),
        ("[[A]] is what I would say, but no", None),  # text after the marker: not an ending
        ("I cannot decide.", None),
        ("Both fail. [[D]]", None),  # both bad not allowed in this campaign
        ("", None),
    ],
)
def test_the_verdict_is_the_marker_the_reply_ends_with_never_a_guess(reply, expected):
    assert prompting.parse_verdict(reply, ("A", "B", "C")) == expected


def test_dimension_scores_are_read_on_their_scale_only():
    dims = [prompting.DimensionSpec("helpfulness", "Helpfulness", 1, 5), prompting.DimensionSpec("style", "S", 1, 5)]
    text = "helpfulness: A=4, B=2\nstyle: A=9, B=1\n[[A]]"
    assert prompting.parse_scores(text, dims) == {"helpfulness": {"A": 4, "B": 2}}


# -- position swap -----------------------------------------------------------------------------------


def test_a_judge_that_always_answers_a_is_never_position_consistent_and_all_its_verdicts_are_ties(campaign):
    judge = static_judge(campaign, "Answer A, clearly. [[A]]")
    result = run(judge)
    assert result.created == 9  # 3 prompts x 3 pairs
    verdicts = list(JudgeVerdict.objects.filter(judge=judge))
    assert {v.status for v in verdicts} == {"done"}
    assert {v.outcome for v in verdicts} == {"tie"}
    assert {v.consistent for v in verdicts} == {False}
    assert {(v.lo_first_verdict, v.hi_first_verdict) for v in verdicts} == {("A", "A")}
    assert all(v.calls == 2 and v.prompt_tokens > 0 for v in verdicts)


def test_a_scripted_judge_is_asked_both_orders_and_its_agreeing_verdicts_count(judge_api):
    campaign = make_campaign(slug="swap")
    judge = api_judge(judge_api, campaign, "judge?prefer=Answer number 0")  # Alpha's answers say "number 0"
    run(judge)
    calls = judge_api.requests_for("judge?prefer=Answer number 0")
    assert len(calls) == 18  # 9 pairings x 2 orders
    verdicts = JudgeVerdict.objects.filter(judge=judge).select_related("model_lo", "model_hi")
    alpha = ModelEntry.objects.get(name="Alpha")
    for v in verdicts:
        assert v.status == "done" and v.consistent is True
        if alpha.pk in (v.model_lo_id, v.model_hi_id):
            assert v.outcome == ("lo" if v.model_lo_id == alpha.pk else "hi")
        else:
            assert v.outcome == "tie"  # neither answer has the word: [[C]] both ways
    # Both orders were really shown: each pair of answers once as A, B and once as B, A.
    shown = [
        tuple(
            re.search(f"<{tag}>(.*?)</{tag}>", c.body["messages"][0]["content"], re.S)[1]
            for tag in ("answer_a", "answer_b")
        )
        for c in calls
    ]
    assert len(set(shown)) == 18 and {(b, a) for a, b in shown} == set(shown)


# -- faults ------------------------------------------------------------------------------------------


def test_a_reply_without_a_verdict_is_a_failure_with_its_raw_text(judge_api):
    campaign = make_campaign(slug="garbled", models=("Alpha", "Beta"), prompts=1)
    judge = api_judge(judge_api, campaign, "judge?reply=I would rather not say.")
    run(judge)
    verdict = JudgeVerdict.objects.get(judge=judge)
    assert verdict.status == "failed" and verdict.outcome == ""
    assert verdict.lo_first_raw == "I would rather not say." and verdict.lo_first_verdict == ""
    assert "unparsed verdict" in verdict.error


def test_a_rate_limited_judge_waits_for_retry_after_and_then_succeeds(judge_api):
    campaign = make_campaign(slug="limited", models=("Alpha", "Beta"), prompts=1)
    name = "judge?prefer=Answer number 1&status=429&retry_after=0.3&times=1"
    judge = api_judge(judge_api, campaign, name)
    run(judge)
    verdict = JudgeVerdict.objects.get(judge=judge)
    assert verdict.status == "done" and verdict.outcome == "hi" and verdict.attempts == 2
    calls = judge_api.requests_for(name)
    assert len(calls) == 3  # the refused one, then both orders
    assert calls[1].at - calls[0].at >= 0.3


def test_a_stalled_judge_times_out_and_fails_after_its_retries(judge_api, settings):
    settings.ARENA_GENERATION_MAX_RETRIES = 1
    campaign = make_campaign(slug="stalled", models=("Alpha", "Beta"), prompts=1)
    name = "judge?stall_after=0&hang=5"
    judge = api_judge(judge_api, campaign, name, read_timeout=0.2)
    started = time.monotonic()
    run(judge)
    verdict = JudgeVerdict.objects.get(judge=judge)
    assert verdict.status == "failed" and verdict.error.startswith("timeout")
    assert len(judge_api.requests_for(name)) == 2 and time.monotonic() - started < 4


def test_a_stored_reply_is_kept_and_only_the_missing_order_is_asked(judge_api):
    campaign = make_campaign(slug="resume", models=("Alpha", "Beta"), prompts=1)
    name = "judge?prefer=Answer number 0"
    judge = api_judge(judge_api, campaign, name)
    planning.plan(judge)
    JudgeVerdict.objects.filter(judge=judge).update(lo_first_raw="Earlier run. [[A]]", lo_first_verdict="A")
    running.dispatch(judge.pk)
    verdict = JudgeVerdict.objects.get(judge=judge)
    assert len(judge_api.requests_for(name)) == 1
    assert verdict.lo_first_raw == "Earlier run. [[A]]" and verdict.status == "done" and verdict.outcome == "lo"


# -- idempotence and the cache -------------------------------------------------------------------------


def test_running_twice_judges_nothing_twice(judge_api):
    campaign = make_campaign(slug="twice", models=("Alpha", "Beta"), prompts=2)
    judge = api_judge(judge_api, campaign, "judge?prefer=Answer number 0")
    assert run(judge).created == 2
    assert run(judge).created == 0  # sampling judge (no reply cache): still no pairing judged twice
    assert judging.judge_chunk([JudgeVerdict.objects.filter(judge=judge).first().pk]).skipped == 1
    assert len(judge_api.requests_for("judge?prefer=Answer number 0")) == 4


def test_the_same_judge_template_and_answers_are_never_asked_twice(judge_api):
    name = "judge?prefer=Answer number 0"
    first = make_campaign(slug="cache-a", models=("Alpha", "Beta"), prompts=2)
    judge = api_judge(judge_api, first, name, params={"temperature": 0})  # deterministic: replies are reused
    run(judge)
    second = make_campaign(slug="cache-b", models=("Alpha", "Beta"), prompts=2)  # the same texts
    again = Judge.objects.create(campaign=second, model=judge.model)
    run(again)
    assert len(judge_api.requests_for(name)) == 4
    reused = JudgeVerdict.objects.filter(judge=again)
    assert {v.status for v in reused} == {"done"} and {v.calls for v in reused} == {0}
    changed = Judge.objects.get(pk=again.pk)
    changed.template = "Other words. {conversation} {answer_a} {answer_b} {verdict_options}"
    changed.save()
    JudgeVerdict.objects.filter(judge=again).delete()
    run(changed)
    assert len(judge_api.requests_for(name)) == 8  # a new template is a new question


def test_sampled_runs_take_n_pairings(campaign):
    judge = static_judge(campaign, "[[C]]")
    assert run(judge, limit=4, seed=1).created == 4
    assert JudgeVerdict.objects.filter(judge=judge, status="done").count() == 4


# -- self-preference -----------------------------------------------------------------------------------


def test_a_judge_does_not_judge_its_own_battles_unless_staff_allow_it(campaign):
    alpha = ModelEntry.objects.get(name="Alpha")
    alpha.backend_settings = {"text": "[[C]]"}
    alpha.save()
    judge = Judge.objects.create(campaign=campaign, model=alpha)
    result = run(judge)
    assert (result.created, result.left_out_self) == (3, 6)
    assert not JudgeVerdict.objects.filter(judge=judge, model_lo=alpha).exists()
    assert not JudgeVerdict.objects.filter(judge=judge, model_hi=alpha).exists()
    judge.allow_self_judging = True
    judge.save()
    assert run(judge).created == 6


def test_the_reaper_hands_out_again_the_pairings_of_a_dead_worker(campaign, settings):
    from datetime import timedelta

    from django.utils import timezone

    judge = static_judge(campaign, "[[C]]")
    planning.plan(judge, limit=2, seed=0)
    stuck, fresh = JudgeVerdict.objects.filter(judge=judge).order_by("id")
    long_ago = timezone.now() - timedelta(seconds=settings.ARENA_GENERATION_STALE_AFTER + 1)
    JudgeVerdict.objects.filter(pk=stuck.pk).update(status="running", attempts=1, updated_at=long_ago)
    JudgeVerdict.objects.filter(pk=fresh.pk).update(status="running", attempts=1)  # alive: left alone
    assert running.requeue_stale() == 1
    assert JudgeVerdict.objects.get(pk=stuck.pk).status == "done"
    assert JudgeVerdict.objects.get(pk=fresh.pk).status == "running"


def test_a_judge_answering_an_html_page_fails_with_the_error_for_staff(judge_api, settings):
    settings.ARENA_GENERATION_MAX_RETRIES = 0
    campaign = make_campaign(slug="garbage", models=("Alpha", "Beta"), prompts=1)
    judge = api_judge(judge_api, campaign, "judge?garbage=1")
    run(judge)
    verdict = JudgeVerdict.objects.get(judge=judge)
    assert verdict.status == "failed" and verdict.error.startswith("invalid_response") and verdict.outcome == ""


def test_an_anthropic_judge_works_the_same(judge_api, monkeypatch):
    monkeypatch.setenv("JUDGE_TEST_KEY", "sk-judge")
    campaign = make_campaign(slug="claude", models=("Alpha", "Beta"), prompts=2)
    entry = ModelEntry.objects.create(
        name="Claude judge",
        backend="anthropic",
        backend_settings={
            "base_url": judge_api.root_url,
            "model": "claude?prefer=Answer number 1",
            "api_key_env": "JUDGE_TEST_KEY",
            "max_retries": 0,
        },
    )
    judge = Judge.objects.create(campaign=campaign, model=entry)
    run(judge)
    assert {(v.status, v.outcome, v.consistent) for v in JudgeVerdict.objects.filter(judge=judge)} == {
        ("done", "hi", True)
    }
    assert {r.path for r in judge_api.requests_for("claude?prefer=Answer number 1")} == {"/v1/messages"}


# -- chunks, slots and the task ---------------------------------------------------------------------------


def test_a_chunk_calls_concurrently_but_never_beyond_the_judges_limit(judge_api):
    campaign = make_campaign(slug="lanes", prompts=3)  # 9 pairings
    name = "judge?prefer=Answer number 0&delay=0.05"
    judge = api_judge(judge_api, campaign, name)
    Judge.objects.filter(pk=judge.pk).update(max_concurrency=2)
    run(judge)
    assert JudgeVerdict.objects.filter(judge=judge, status="done").count() == 9
    assert len(judge_api.requests_for(name)) == 18
    assert judge_api.max_in_flight(name) == 2


def test_pairings_of_a_chunk_asking_the_same_question_share_one_call(judge_api):
    campaign = make_campaign(slug="twins", models=("Alpha", "Beta"), prompts=2)
    twin, original = campaign.prompts.order_by("-id")
    Prompt.objects.filter(pk=twin.pk).update(messages=original.messages)
    for response in Response.objects.filter(prompt=twin):
        response.content = Response.objects.get(prompt=original, model=response.model).content
        response.save()
    name = "judge?prefer=Answer number 0"
    judge = api_judge(judge_api, campaign, name, params={"temperature": 0})
    run(judge)
    verdicts = JudgeVerdict.objects.filter(judge=judge)
    assert {(v.status, v.outcome) for v in verdicts} == {("done", "lo")}
    assert len(judge_api.requests_for(name)) == 2 and sum(v.calls for v in verdicts) == 2


def test_a_finished_chunk_hands_its_slots_to_the_next_pending_pairings(
    campaign, monkeypatch, django_capture_on_commit_callbacks
):
    judge = static_judge(campaign, "[[C]]")
    planning.plan(judge)
    sent: list[tuple[list[int], str]] = []
    monkeypatch.setattr(running, "send_chunks", lambda ids, queue, **kw: sent.append((ids, queue)))
    with django_capture_on_commit_callbacks(execute=True):
        handed = running.hand_off(judging.ChunkOutcome(judge_id=judge.pk, queue="generate_api", done=2, failed=1))
    queued = list(JudgeVerdict.objects.filter(judge=judge, status="queued").order_by("id").values_list("id", flat=True))
    assert handed == 3 and sent == [(queued, "generate_api")]
    assert running.hand_off(judging.ChunkOutcome(judge_id=judge.pk, queue="generate_api", lost=2)) == 0


def test_a_slow_pairing_holds_only_its_own_slot(judge_api):
    # The first call takes 3 s, the others milliseconds: with two slots, the other slot judges the
    # other 8 pairings (16 calls) meanwhile instead of waiting for the slow one's chunk to finish.
    campaign = make_campaign(slug="slowest", prompts=3)  # 9 pairings
    name = "judge?prefer=Answer number 0&delay=3&times=1"
    judge = api_judge(judge_api, campaign, name)
    Judge.objects.filter(pk=judge.pk).update(max_concurrency=2)
    run(judge)
    assert JudgeVerdict.objects.filter(judge=judge, status="done").count() == 9
    requests = judge_api.requests_for(name)
    first = requests[0].at
    assert len(requests) == 18 and sum(r.at - first < 2.5 for r in requests) == 17
    assert judge_api.max_in_flight(name) == 2


def _queue_first(judge: Judge, n: int) -> list[int]:
    planning.plan(judge)
    ids = list(JudgeVerdict.objects.filter(judge=judge).order_by("id").values_list("id", flat=True)[:n])
    JudgeVerdict.objects.filter(pk__in=ids).update(status="queued")
    return ids


def test_a_task_gives_each_freed_slot_to_the_next_pending_pairing(
    judge_api, monkeypatch, django_capture_on_commit_callbacks
):
    campaign = make_campaign(slug="refill", prompts=3)  # 9 pairings
    name = "judge?prefer=Answer number 0&delay=0.02"
    judge = api_judge(judge_api, campaign, name)
    sent: list[list[int]] = []
    monkeypatch.setattr(running, "send_chunks", lambda ids, queue, **kw: sent.append(ids))
    with django_capture_on_commit_callbacks(execute=True):
        outcome = running.run_chunk(_queue_first(judge, 2))
    assert (outcome.done, outcome.refilled, outcome.free) == (9, 7, 2)
    assert sent == []  # nothing left to hand on
    assert {(v.status, v.attempts, v.calls) for v in JudgeVerdict.objects.filter(judge=judge)} == {("done", 1, 2)}
    assert judge_api.max_in_flight(name) == 2 and len(judge_api.requests_for(name)) == 18


def test_after_its_refill_time_a_task_hands_its_slots_on(judge_api, monkeypatch, django_capture_on_commit_callbacks):
    campaign = make_campaign(slug="hand-on", prompts=3)
    judge = api_judge(judge_api, campaign, "judge?prefer=Answer number 0")
    sent: list[list[int]] = []
    monkeypatch.setattr(running, "send_chunks", lambda ids, queue, **kw: sent.append(ids))
    monkeypatch.setattr(running, "REFILL_FOR", 0.0)
    with django_capture_on_commit_callbacks(execute=True):
        outcome = running.run_chunk(_queue_first(judge, 2))
    queued = list(JudgeVerdict.objects.filter(judge=judge, status="queued").order_by("id").values_list("id", flat=True))
    assert (outcome.done, outcome.refilled) == (2, 0) and sent == [queued] and len(queued) == 2


def test_a_chunks_retries_go_out_again_with_a_countdown(judge_api, monkeypatch):
    campaign = make_campaign(slug="retry-later", models=("Alpha", "Beta"), prompts=1)
    judge = api_judge(judge_api, campaign, "judge?prefer=Answer number 1&status=429&retry_after=0.3&times=1")
    planning.plan(judge)
    ids = list(JudgeVerdict.objects.filter(judge=judge).values_list("id", flat=True))
    JudgeVerdict.objects.filter(pk__in=ids).update(status="queued")
    sent: list[tuple[list[int], dict]] = []
    monkeypatch.setattr(running, "send_chunks", lambda ids, queue, **kw: sent.append((ids, kw)))
    outcome = running.run_chunk(ids, retries_done=0)
    assert outcome.retry == tuple(ids) and outcome.finished == 0
    assert sent == [(ids, {"retries": 1, "countdown": outcome.retry_in})] and outcome.retry_in >= 0.3
    assert JudgeVerdict.objects.get(pk=ids[0]).status == "queued"  # it keeps its slot


def test_the_judge_task_is_sent_by_its_registered_name_and_runs_inline_when_eager(campaign):
    judge = static_judge(campaign, "[[A]]")
    planning.plan(judge, limit=3, seed=0)
    ids = list(JudgeVerdict.objects.filter(judge=judge).values_list("id", flat=True))
    JudgeVerdict.objects.filter(pk__in=ids).update(status="queued")
    running.send_chunks(ids, "generate_api")
    assert set(JudgeVerdict.objects.filter(judge=judge).values_list("status", flat=True)) == {"done"}


def test_a_judge_whose_settings_its_backend_refuses_fails_with_the_reason(campaign):
    judge = static_judge(campaign, "[[C]]")
    ModelEntry.objects.filter(pk=judge.model_id).update(backend_settings={"text": "[[C]]", "colour": "blue"})
    run(judge)
    verdicts = JudgeVerdict.objects.filter(judge=judge)
    assert {v.status for v in verdicts} == {"failed"} and {v.calls for v in verdicts} == {0}
    assert all(v.error.startswith("bad_request") and "colour" in v.error for v in verdicts)
