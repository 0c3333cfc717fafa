"""Small builders for test data: a campaign with models, prompts and ready responses."""

from __future__ import annotations

from arena.models import Campaign, Dimension, ModelEntry, Prompt, Response
from arena.services.items import create_items


def make_campaign(
    *,
    slug: str = "test",
    models: tuple[str, ...] = ("Alpha", "Beta", "Gamma"),
    prompts: int = 3,
    dimensions: tuple[str, ...] = (),
    **fields,
) -> Campaign:
    fields.setdefault("status", Campaign.Status.ACTIVE)
    campaign = Campaign.objects.create(
        slug=slug, title=f"Campaign {slug}", instructions="Pick the better answer.", **fields
    )
    entries = [ModelEntry.objects.get_or_create(name=name)[0] for name in models]
    campaign.contenders.set(entries)
    for i, key in enumerate(dimensions):
        Dimension.objects.create(campaign=campaign, key=key, label=key.title(), order=i)
    for p in range(prompts):
        prompt = Prompt.objects.create(
            campaign=campaign,
            external_id=f"{slug}-p{p}",
            messages=[{"role": "user", "content": f"Question number {p}?"}],
            category="coding" if p % 2 else "facts",
        )
        for i, entry in enumerate(entries):
            Response.objects.create(
                prompt=prompt,
                model=entry,
                content=f"Answer number {i} to question {p}.",
                status=Response.Status.DONE,
                source=Response.Source.IMPORTED,
            )
    create_items(campaign, campaign.prompts.values_list("id", flat=True))
    return campaign
