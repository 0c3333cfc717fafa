"""Checks of a finished answer, in both generation paths (pre-generated prompt sets and live battles).

An answer is flagged, with its reasons stored on the response (``Response.checks``), when it is

- ``empty``: nothing a reader sees (whitespace, markup or invisible characters only);
- ``cut``: the backend stopped it at ``max_new_tokens`` (finish reason ``length``);
- ``refusal``: it opens by declining ("I'm sorry, but I can't help with that", "As an AI, I cannot
  ...", "I must decline"): only the first ``REFUSAL_WINDOW`` characters are read, so a long answer
  that says "I can't stress enough" in its fifth paragraph is not a refusal;
- ``identity``: it names a model (arena.core.identity: any campaign model, a well-known family).

A battle is flagged when either of its answers is, or when its identity check flagged it (the
hand-out's ``Battle.flagged``); staff see these battles, with the reasons, on the dashboard. Only
identity leaks take a battle's vote out of the ratings (as before); an empty, cut or refusing answer
is a fair loss for its model, flagged so that staff can look at the model's settings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from arena.core.identity import normalise, reveals_identity

REASONS = {
    "empty": "empty answer",
    "cut": "cut at max_new_tokens",
    "refusal": "refused to answer",
    "identity": "named a model",
}
REFUSAL_WINDOW = 300

_NOT_ABLE = r"(?:can ?not|can't|cant|won't|will not|am (?:not able|unable)|'m (?:not able|unable)|must decline)"
_DECLINED = (
    r"(?:help|assist|comply|provide|fulfil|fulfill|answer|respond|create|generate|write|share|give|engage|"
    r"support|do that|do this|with (?:that|this))"
)
_REFUSAL = re.compile(
    rf"^(?:(?:i'm|i am) (?:sorry|afraid)|sorry|unfortunately|apologies|i apologi[sz]e)\b"
    rf"[^.!?\n]{{0,40}}?\bi {_NOT_ABLE}"
    rf"|^(?:as an ai(?: (?:language model|assistant|model))?,? )?i {_NOT_ABLE}\b[^.!?\n]{{0,20}}?\b{_DECLINED}"
    rf"|^i must (?:respectfully )?decline\b"
    rf"|^as an ai(?: (?:language model|assistant|model))?,? i (?:don't|do not|cannot|can't)\b"
)


def is_refusal(text: str) -> bool:
    """True when the answer opens by declining (see the module's docstring)."""
    head = normalise(text[: REFUSAL_WINDOW * 2])[:REFUSAL_WINDOW].lstrip(" \n\t#>*-\"'")
    return bool(_REFUSAL.search(head))


def check_answer(text: str, finish_reason: str = "", names: Iterable[str] = ()) -> list[str]:
    """The reasons to flag this answer (keys of REASONS, in that order); empty when it is fine."""
    reasons = []
    if not normalise(text).strip():
        reasons.append("empty")
    if finish_reason == "length":
        reasons.append("cut")
    if "empty" not in reasons and is_refusal(text):
        reasons.append("refusal")
    if "empty" not in reasons and reveals_identity([text], [n for n in names if n]):
        reasons.append("identity")
    return reasons


def merge(stored: str, reasons: Iterable[str]) -> str:
    """``Response.checks`` after adding ``reasons`` (a live side keeps every turn's), in REASONS order."""
    have = {*filter(None, stored.split(",")), *reasons}
    return ",".join(key for key in REASONS if key in have)


def describe(checks: str) -> list[str]:
    """The stored reasons in words."""
    return [REASONS.get(key, key) for key in filter(None, checks.split(","))]
