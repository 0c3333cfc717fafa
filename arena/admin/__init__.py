"""The staff admin of the arena app, one module per area; importing this package registers them all.

- ``campaigns``: campaigns and their dimensions, invitations, imports, status and generation actions
  (``generation``);
- ``model_entries``: model entries and the "try this model" page;
- ``records``: prompts, responses, items, voters, battles, votes, rankings (read-only records);
- ``gold``: gold battles;
- ``security``: the staff login with its lock-out after repeated failures.

The guardrails' admin (refused prompts, usage) registers from ``arena.guardrails.admin``.
"""

from django.contrib import admin

from arena.admin import campaigns, gold, model_entries, records  # noqa: F401  (registration)
from arena.guardrails import admin as guardrails_admin  # noqa: F401  (registration)

admin.site.site_header = "Arena administration"
admin.site.site_title = "Arena admin"
admin.site.index_title = "Campaigns, models and votes"
