"""The judge-verdict rows of a chunk: claims fenced by the run's token, and the write with the next claim."""

from __future__ import annotations

import pytest

from arena.judges import planning, verdict_rows
from arena.judges.models import JudgeVerdict
from tests.arena.judges.test_running import static_judge

pytestmark = pytest.mark.django_db


def test_a_requeued_runs_late_write_is_ignored(campaign):
    judge = static_judge(campaign, "[[C]]")
    planning.plan(judge, limit=2, seed=0)
    ids = list(JudgeVerdict.objects.filter(judge=judge).order_by("id").values_list("id", flat=True))
    JudgeVerdict.objects.filter(pk__in=ids).update(status="queued")
    tokens = verdict_rows.claim(ids)
    assert verdict_rows.claim(ids) == {}  # a second delivery gets nothing
    runs = verdict_rows.load(tokens)
    JudgeVerdict.objects.filter(pk=ids[0]).update(attempts=tokens[ids[0]] + 1)  # taken over by a new run
    rows = [{"status": "done", "outcome": "tie", "consistent": True, "scores": {}, "error": ""} for _ in runs]
    assert verdict_rows.store(runs, rows) == {ids[1]}
    assert JudgeVerdict.objects.get(pk=ids[0]).status == "running"
    assert JudgeVerdict.objects.get(pk=ids[1]).outcome == "tie"


def test_only_the_rows_a_run_wrote_done_or_failed_free_slots_for_pending_pairings(campaign):
    judge = static_judge(campaign, "[[C]]")
    planning.plan(judge)  # 9 pairings
    ids = list(JudgeVerdict.objects.filter(judge=judge).order_by("id").values_list("id", flat=True))
    JudgeVerdict.objects.filter(pk__in=ids[:3]).update(status="queued")
    tokens = verdict_rows.claim(ids[:3])
    runs = verdict_rows.load(tokens)
    JudgeVerdict.objects.filter(pk=ids[0]).update(attempts=tokens[ids[0]] + 1)  # taken over: not ours to free
    done = {"status": "done", "outcome": "tie", "consistent": True, "scores": {}, "error": ""}
    retry = {**done, "status": "queued", "outcome": "", "consistent": None, "error": "retrying: timeout"}
    won, fresh = verdict_rows.store_and_claim(runs, [done, done, retry], judge.pk, verdict_rows.Known())
    assert won == {ids[1], ids[2]}  # the retry keeps its slot, the done row frees one
    assert [run.verdict_id for run in fresh] == [ids[3]] and fresh[0].answers["lo"]
    assert JudgeVerdict.objects.get(pk=ids[3]).status == "running" and fresh[0].token == 1
    assert JudgeVerdict.objects.filter(judge=judge, status="pending").count() == 5
