"""LLM judges beside human voters: automatic verdicts on a campaign's battles, stored apart from votes.

See docs/judges.md. Domain logic lives in plain functions: `prompting` (templates, parsing),
`planning` (what to judge), `running` (the worker's side), `agreement` and `winrates` (numbers),
`boards` (leaderboards and reports from the stored verdicts).
"""
