"""Whole campaigns from one JSON file: the campaign, its models, dimensions, prompts and responses.

The whole file is checked first, the campaign, each model and each dimension as the admin's forms
check them (``full_clean``), and every problem is listed at once; only a clean file is written, in one
transaction. A missing key, a bad value or a value too long for its column is an ImportFailed naming
the part of the file, never a traceback from the database.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models, transaction

from arena.model_validation import name_key
from arena.models import Campaign, Dimension, ModelEntry
from arena.services.imports.plain import row_from_record
from arena.services.imports.rows import ImportFailed, ImportSummary, PromptRow, model_name
from arena.services.imports.writer import import_prompts

CAMPAIGN_FIELDS = {
    "title",
    "instructions",
    "status",
    "mode",
    "access",
    "allow_tie",
    "allow_both_bad",
    "sampling",
    "vote_limit",
    "daily_vote_limit",
    "votes_per_item",
    "task",
    "ranking_size",
    "gold_rate",
    "one_battle_per_prompt",
    "private",
    "moderator",
    "moderator_settings",
    "moderation_fail_open",
    "live_battles_per_hour",
    "live_tokens_per_day",
    "live_cost_per_day",
}
MODEL_FIELDS = {"backend", "backend_settings", "params", "is_active", "weight", "input_price", "output_price"}
DIMENSION_FIELDS = {"key", "label", "help_text", "scale_min", "scale_max"}


def load_campaign(spec: dict[str, Any]) -> tuple[Campaign, ImportSummary]:
    """Create or update a campaign, its models, dimensions, prompts and responses from a dict.

    The format is the one of arena/demo/demo_campaign.json (see the README). Models that exist (by
    name) are added to the campaign as they are; dimensions are matched by key.
    """
    if not isinstance(spec, dict) or not spec.get("slug") or not spec.get("title"):
        raise ImportFailed(['the campaign needs at least "slug" and "title"'])
    unknown = set(spec) - CAMPAIGN_FIELDS - {"slug", "dimensions", "models", "prompts"}
    if unknown:
        raise ImportFailed([f"unknown campaign fields: {', '.join(sorted(unknown))}"])
    errors: list[str] = []
    campaign = _campaign(spec, errors)
    entries = _models(_list(spec, "models", errors), errors)
    dimensions = _dimensions(_list(spec, "dimensions", errors), errors)
    rows = _prompts(_list(spec, "prompts", errors), errors)
    if errors:
        raise ImportFailed(errors)
    with transaction.atomic():
        campaign.save()
        for entry in entries:
            if entry.pk is None:
                entry.save()
        campaign.contenders.add(*entries)
        for dimension in dimensions:
            Dimension.objects.update_or_create(
                campaign=campaign,
                key=dimension.key,
                defaults={f: getattr(dimension, f) for f in ("label", "help_text", "scale_min", "scale_max", "order")},
            )
        summary = import_prompts(campaign, rows) if rows else ImportSummary()
    return campaign, summary


def _list(spec: dict[str, Any], name: str, errors: list[str]) -> list:
    value = spec.get(name) or []
    if not isinstance(value, list):
        errors.append(f"{name}: expected a list")
        return []
    return value


def _campaign(spec: dict[str, Any], errors: list[str]) -> Campaign:
    slug = spec["slug"]
    campaign = (Campaign.objects.filter(slug=slug).first() if isinstance(slug, str) else None) or Campaign(slug=slug)
    for field, value in spec.items():
        if field in CAMPAIGN_FIELDS:
            setattr(campaign, field, value)
    errors.extend(_problems(campaign, "campaign"))
    return campaign


def _models(specs: list, errors: list[str]) -> list[ModelEntry]:
    entries: list[ModelEntry] = []
    seen: dict[str, tuple[int, str]] = {}  # name_key -> (model number, name)
    for index, model_spec in enumerate(specs, start=1):
        if not isinstance(model_spec, dict):
            errors.append(f"model {index}: expected an object with a name")
            continue
        if model_spec.get("name") in (None, ""):
            errors.append(f"model {index}: give a name")
            continue
        try:
            name = model_name(model_spec["name"], "name")
        except ValueError as error:
            errors.append(f"model {index}: {error}")
            continue
        extra = set(model_spec) - MODEL_FIELDS - {"name"}
        if extra:
            errors.append(f"model {name!r}: unknown fields {', '.join(sorted(extra))}")
            continue
        earlier = seen.get(name_key(name))
        if earlier is not None:
            same = "also given" if earlier[1] == name else f"differs only by invisible characters from {earlier[1]!r},"
            errors.append(f"model {index}: {name!r} {same} as model {earlier[0]}")
            continue
        seen[name_key(name)] = (index, name)
        entry = ModelEntry.objects.filter(name=name).first() or ModelEntry(
            name=name, **{k: v for k, v in model_spec.items() if k in MODEL_FIELDS}
        )
        problems = _problems(entry, f"model {name!r}")
        errors.extend(problems)
        if not problems:
            entries.append(entry)
    return entries


def _dimensions(specs: list, errors: list[str]) -> list[Dimension]:
    dimensions: list[Dimension] = []
    seen: dict[str, int] = {}
    for index, spec in enumerate(specs, start=1):
        if not isinstance(spec, dict):
            errors.append(f"dimension {index}: expected an object with a key")
            continue
        key = spec.get("key")
        if not isinstance(key, str) or not key:
            errors.append(f'dimension {index}: give a "key" (text, a slug such as "helpfulness")')
            continue
        what = f"dimension {key!r}"
        extra = set(spec) - DIMENSION_FIELDS
        if extra:
            errors.append(f"{what}: unknown fields {', '.join(sorted(extra))}")
            continue
        if key in seen:
            errors.append(f"dimension {index}: key {key!r} also given as dimension {seen[key]}")
            continue
        seen[key] = index
        dimension = Dimension(
            key=key,
            label=spec.get("label", key),
            help_text=spec.get("help_text", ""),
            scale_min=spec.get("scale_min", 1),
            scale_max=spec.get("scale_max", 5),
            order=index - 1,
        )
        # The campaign may not exist yet; the scale's order is Dimension.clean's (and a constraint's).
        problems = _problems(dimension, what, exclude=["campaign"], validate_constraints=False)
        errors.extend(problems)
        if not problems:
            dimensions.append(dimension)
    return dimensions


def _prompts(records: list, errors: list[str]) -> list[PromptRow]:
    rows = []
    for index, record in enumerate(records, start=1):
        try:
            rows.append(row_from_record(index, record))
        except ValueError as error:
            errors.append(f"prompt {index}: {error}")
    return rows


def _problems(instance: models.Model, what: str, **options: Any) -> list[str]:
    """Validate like the admin form does: each problem as "what: field: message"."""
    try:
        instance.full_clean(**options)
    except ValidationError as error:
        return [
            f"{what}: {'' if field == NON_FIELD_ERRORS else f'{field}: '}{' '.join(messages)}"
            for field, messages in error.message_dict.items()
        ]
    return []
