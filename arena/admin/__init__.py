"""The staff admin of the arena app, one module per area; importing this package registers them all.

- ``campaigns``: campaigns and their dimensions, invitations, imports, status and generation actions
  (``generation``);
- ``model_entries``: model entries and the "try this model" page;
- ``records``: prompts, responses, items, voters, battles, votes, rankings (read-only records);
- ``gold``: gold battles;
- ``guardrails``: refused prompts and generation usage;
- ``exports``: export jobs; ``judges``: judges, their verdicts and runs;
- ``security``: the staff login with its lock-out after repeated failures.
"""

from django.contrib import admin

from arena.admin import campaigns, exports, gold, guardrails, judges, model_entries, records  # noqa: F401  (registration)

admin.site.site_header = "Arena administration"
admin.site.site_title = "Arena admin"
admin.site.index_title = "Campaigns, models and votes"
