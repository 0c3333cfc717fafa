"""LLM judges beside human voters: automatic verdicts on a campaign's battles, stored apart from votes.

See docs/judges.md. Domain logic lives in plain functions: `prompting` (templates, parsing),
`planning` (what to judge), `running` (handing pairings to the judge's slots), `judging` (the worker's
side: calls in both orders, verdicts written apart from votes), `agreement` and `winrates` (numbers),
`boards` (leaderboards and reports from the stored verdicts).
"""
