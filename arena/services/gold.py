"""Gold battles: pairs of responses with the verdict staff expect, mixed into the hand-out to check voters.

A campaign hands out a gold battle instead of a regular one with probability ``Campaign.gold_rate``
(pairwise prompt-set campaigns only). To the voter a gold battle is an ordinary battle: same kind of
opaque id, left/right drawn at random on the server, same page, same vote. It differs only in
``Battle.gold`` (never shown) and in having no item, so its vote neither fills a "K votes per item"
slot nor moves the balanced sampler. Its vote is recorded like any other, scores the voter
(arena.services.quality.gold_agreement), and stays out of the ratings and of the default exports.

A voter never gets the same gold battle twice: the check and the insert run under a lock on the
voter's row (PostgreSQL), so two tabs asking at once cannot both take the same one. The battle is
stored and its page read by arena.services.new_battles (``store_battle``), the same statements as a
regular battle's; the regular hand-out (arena.services.battles) asks ``maybe_gold_battle`` first.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection, transaction

from arena.core.errors import ArenaError
from arena.core.hot_sql import sql
from arena.models import Battle, Campaign, GoldBattle, Prompt, Response, Vote, Voter
from arena.services.new_battles import BattleView, battle_params, still_blind, store_battle
from arena.services.profiles import CampaignProfile

_LOCK_VOTER_SQL = sql("SELECT id FROM {voter} WHERE id = %s FOR NO KEY UPDATE", Voter)

# A random active gold battle of the campaign that is still blind for this voter (the rule of every
# hand-out, new_battles.still_blind: never given to them, no answer of it seen at a reveal), both answers
# ready. The draw looks at the gold table and the voter's own battles only; readiness is checked on the
# few drawn, so the cost does not grow with the number of responses.
_UNSEEN_GOLD_SQL = sql(
    """
SELECT g.id, g.prompt_id, g.first_id, g.second_id
FROM (
  SELECT id, prompt_id, first_id, second_id FROM {goldbattle} gb
  WHERE campaign_id = %s AND is_active = %s AND {blind}
  ORDER BY RANDOM()
  LIMIT 8
) g
JOIN {response} f ON f.id = g.first_id
JOIN {response} s ON s.id = g.second_id
WHERE f.status = 'done' AND s.status = 'done'
LIMIT 1
""",
    GoldBattle,
    Response,
)
_UNSEEN_GOLD = {
    strict: _UNSEEN_GOLD_SQL.format(
        blind=still_blind("gb.prompt_id", "gb.first_id", "gb.second_id", same="b.gold_id = gb.id", strict=strict)
    )
    for strict in (False, True)
}


def wants_gold(campaign: Campaign) -> bool:
    """A coin weighted by the campaign's gold rate, for campaigns where gold applies at all."""
    return (
        campaign.gold_rate > 0
        and campaign.mode == Campaign.Mode.PROMPT_SET
        and campaign.task == Campaign.Task.PAIRWISE
        and random.random() < campaign.gold_rate
    )


def maybe_gold_battle(profile: CampaignProfile, voter_id: int) -> BattleView | None:
    """The hand-out's one call: a new gold battle at the campaign's rate, or None for a regular one.

    None too when the voter has already seen every active gold battle of the campaign.
    """
    if not wants_gold(profile.campaign):
        return None
    return hand_out_gold(profile, voter_id)


def hand_out_gold(profile: CampaignProfile, voter_id: int) -> BattleView | None:
    """Open a gold battle this voter has never been given, left/right at random; None if none is left.

    Eight unseen gold battles are drawn and the first with both answers ready is taken; should all
    eight have an answer that is no longer ready (gold is checked for ready answers when made), this
    hand-out is a regular battle.
    """
    campaign = profile.campaign
    with transaction.atomic():
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(_LOCK_VOTER_SQL, [voter_id])
            cursor.execute(_UNSEEN_GOLD[campaign.one_battle_per_prompt], [campaign.pk, True, voter_id])
            row = cursor.fetchone()
        if row is None:
            return None
        gold_id, prompt_id, left_id, right_id = row
        if secrets.randbelow(2):
            left_id, right_id = right_id, left_id
        params = battle_params(campaign.pk, voter_id, prompt_id, left_id, right_id, gold_id=gold_id)
        return store_battle(profile, params)


# --- creating gold battles (the admin form and the admin action) ---------------------------------------


def check_gold(
    campaign: Campaign | None, prompt: Prompt | None, first: Response | None, second: Response | None
) -> None:
    """Refuse a gold battle whose parts do not fit together; ArenaError with a message for staff."""
    if prompt is None or first is None or second is None:
        raise ArenaError("Choose a prompt and two of its responses.")
    if campaign is not None and prompt.campaign_id != campaign.pk:
        raise ArenaError("This prompt belongs to another campaign.")
    if first.pk == second.pk:
        raise ArenaError("Choose two different responses.")
    for label, response in (("first", first), ("second", second)):
        if response.prompt_id != prompt.pk:
            raise ArenaError(f"The {label} response answers another prompt.")
        if response.status != Response.Status.DONE:
            raise ArenaError(f"The {label} response is not ready ({response.status}); gold needs finished answers.")


def expected_from_vote(verdict: str) -> str:
    """A vote's verdict as a gold battle's expected verdict, with first = the vote's left response."""
    return {
        Vote.Verdict.LEFT: GoldBattle.Expected.FIRST,
        Vote.Verdict.RIGHT: GoldBattle.Expected.SECOND,
        Vote.Verdict.TIE: GoldBattle.Expected.TIE,
        Vote.Verdict.BOTH_BAD: GoldBattle.Expected.BOTH_BAD,
    }[verdict]


def as_gold_verdict(verdict: str, left_id: int, first_id: int) -> str:
    """What a vote on a gold battle says in the gold battle's terms (first / second / tie / both_bad)."""
    if verdict == Vote.Verdict.LEFT:
        return GoldBattle.Expected.FIRST if left_id == first_id else GoldBattle.Expected.SECOND
    if verdict == Vote.Verdict.RIGHT:
        return GoldBattle.Expected.SECOND if left_id == first_id else GoldBattle.Expected.FIRST
    return verdict


@dataclass
class MarkedGold:
    created: list[GoldBattle]
    skipped: list[str]


def gold_from_votes(votes: Iterable[Vote], note: str = "") -> MarkedGold:
    """Make each vote's battle a gold battle whose expected verdict is that vote's verdict.

    For staff who vote themselves (or trust a vote): the battle's two responses become the gold pair,
    the left one first. Votes on gold battles, live battles and pairs already gold are skipped.
    """
    result = MarkedGold([], [])
    for vote in votes:
        battle: Battle = vote.battle
        label = f"vote on battle {battle.pk[:8]}"
        if battle.gold_id is not None:
            result.skipped.append(f"{label}: already a gold battle")
            continue
        if battle.is_live:
            result.skipped.append(f"{label}: live battles have no fixed responses")
            continue
        pair = {battle.left_id, battle.right_id}
        existing = GoldBattle.objects.filter(campaign_id=battle.campaign_id, prompt_id=battle.prompt_id)
        if any({first, second} == pair for first, second in existing.values_list("first_id", "second_id")):
            result.skipped.append(f"{label}: this pair is already gold")
            continue
        try:
            check_gold(battle.campaign, battle.prompt, battle.left, battle.right)
        except ArenaError as error:
            result.skipped.append(f"{label}: {error.message}")
            continue
        result.created.append(
            GoldBattle.objects.create(
                campaign_id=battle.campaign_id,
                prompt_id=battle.prompt_id,
                first_id=battle.left_id,
                second_id=battle.right_id,
                expected=expected_from_vote(vote.verdict),
                note=note or f"From a vote of {vote.created_at:%Y-%m-%d}.",
            )
        )
    return result
