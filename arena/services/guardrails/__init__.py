"""Guardrails of live campaigns, where voters write prompts that go to paid models.

- ``flood``: per-IP (HMAC), per-campaign and per-voter limits on live prompts (arena.services.ratelimit's
  counters), checked before a voter is even created;
- ``moderation`` with the pluggable moderators (``arena.moderators``): every live prompt is checked before any
  generation;
- ``budgets``: battles per hour, tokens and estimated cost per day, per campaign; ``usage`` records them;
- ``output_checks``: empty, cut, refusing and self-naming answers are flagged on their response;
- ``gate.admit_prompt``: the one function the live battle calls before it spends anything.
"""
