"""Whole campaigns from one JSON file: the campaign, its models, dimensions, prompts and responses."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from arena.models import Campaign, Dimension, ModelEntry
from arena.services.imports.plain import row_from_record
from arena.services.imports.rows import ImportFailed, ImportSummary
from arena.services.imports.writer import import_prompts

CAMPAIGN_FIELDS = {
    "title", "instructions", "status", "mode", "access", "allow_tie", "allow_both_bad", "sampling",
    "vote_limit", "daily_vote_limit", "votes_per_item", "task", "ranking_size", "gold_rate",
}  # fmt: skip
MODEL_FIELDS = {"backend", "backend_settings", "params", "is_active", "weight"}


def load_campaign(spec: dict[str, Any]) -> tuple[Campaign, ImportSummary]:
    """Create or update a campaign, its models, dimensions, prompts and responses from a dict.

    The format is the one of arena/demo/demo_campaign.json (see the README).
    """
    if not isinstance(spec, dict) or not spec.get("slug") or not spec.get("title"):
        raise ImportFailed(['the campaign needs at least "slug" and "title"'])
    unknown = set(spec) - CAMPAIGN_FIELDS - {"slug", "dimensions", "models", "prompts"}
    if unknown:
        raise ImportFailed([f"unknown campaign fields: {', '.join(sorted(unknown))}"])
    rows, errors = [], []
    for index, record in enumerate(spec.get("prompts") or [], start=1):
        try:
            rows.append(row_from_record(index, record))
        except ValueError as error:
            errors.append(f"prompt {index}: {error}")
    if errors:
        raise ImportFailed(errors)
    with transaction.atomic():
        campaign, _ = Campaign.objects.update_or_create(
            slug=spec["slug"], defaults={k: v for k, v in spec.items() if k in CAMPAIGN_FIELDS}
        )
        _check(campaign, "campaign")
        for model_spec in spec.get("models") or []:
            extra = set(model_spec) - MODEL_FIELDS - {"name"}
            if extra:
                raise ImportFailed([f"model {model_spec.get('name')!r}: unknown fields {', '.join(sorted(extra))}"])
            entry, _ = ModelEntry.objects.get_or_create(
                name=model_spec["name"], defaults={k: v for k, v in model_spec.items() if k in MODEL_FIELDS}
            )
            _check(entry, f"model {entry.name!r}")
            campaign.contenders.add(entry)
        for order, dim in enumerate(spec.get("dimensions") or []):
            Dimension.objects.update_or_create(
                campaign=campaign,
                key=dim["key"],
                defaults={
                    "label": dim.get("label", dim["key"]),
                    "help_text": dim.get("help_text", ""),
                    "scale_min": dim.get("scale_min", 1),
                    "scale_max": dim.get("scale_max", 5),
                    "order": order,
                },
            )
        summary = import_prompts(campaign, rows) if rows else ImportSummary()
    return campaign, summary


def _check(instance: Campaign | ModelEntry, what: str) -> None:
    """Validate like the admin form does; a bad value is a clear error, and the transaction rolls back."""
    try:
        instance.full_clean()
    except ValidationError as error:
        raise ImportFailed(
            [f"{what}: {field}: {' '.join(messages)}" for field, messages in error.message_dict.items()]
        ) from None
