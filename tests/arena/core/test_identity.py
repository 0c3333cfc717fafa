"""The identity check reads what the voter reads: normalised plain text, all the campaign's names, the families.

An answer naming a model with a version ("GPT-4-turbo"), behind a soft hyphen or Markdown emphasis,
or by a name holding "&" (which the rendered HTML writes "&amp;") flags its battle; so does a live
answer naming the other model of its campaign. Ordinary prose that happens to use a family's word
("the falcon flew", "llama wool") does not.
"""

from __future__ import annotations

import pytest

from arena.core.identity import reveals_identity
from arena.models import Battle, Campaign, ModelEntry, Prompt, Response, Voter
from arena.rendering import render_markdown
from arena.services import live_sides
from arena.services.battles import open_battle
from arena.services.profiles import campaign_profile
from tests.factories import make_campaign

NAMES = ("Zephyrine", "Q&A-Bot", "Quill-2")

# Each form once as the model wrote it (what a live battle checks) and once as the page shows it.
AS_WRITTEN = {"markdown": lambda text: text, "html": render_markdown}

FORMS_IN_THE_FINDING = [
    "Answer by GPT-4-turbo: the sum is 4.",
    "As Claude-3 Opus, I would put it differently.",
    "Llama-3-70B-Instruct here, happy to help.",
    "ChatGPT-4o thinks the answer is 42.",
    "I am Zephy\u00adrine, and here is the recipe.",  # a soft hyphen inside the campaign's name
    "Cla\u00adude-3 would write it this way.",  # ... inside a family's name
    "I am Zephy*rine*, and here is the recipe.",  # Markdown emphasis inside the name
    "I am **Zephy**rine, and here is the recipe.",
    "I'm Q&A-Bot, and the capital of France is Paris.",  # "Q&amp;A-Bot" in the rendered HTML
]

MORE_FORMS = [
    "GPT\u200b-4 here.",  # a zero-width space
    "\uff27\uff30\uff34\uff0d\uff14 here.",  # full-width letters (Unicode NFKC)
    "I\u2019m Claude, made by Anthropic.",  # a typographic apostrophe
    "ZEPHYRINE disagrees.",
    "zephyrine disagrees.",
    "I am Q & A Bot.",
    "I am Quill 2, and I disagree.",
    "I am quill_2, and I disagree.",
    "As GPT 3.5 turbo, I cannot browse.",
    "The gpt-4o-mini model answers quickly.",
    "Mixtral-8x7B and Qwen2.5-72B agree.",
    "DeepSeek-Coder wrote this function.",
    "I'm Gemini 1.5 Pro.",
    "Phi-3-mini can run on a phone.",
    "Falcon-40B was trained on RefinedWeb.",
    "Vicuna-13b was fine-tuned from LLaMA.",
    "mistral-7b-instruct says hello.",
    "I am Claude.",
    "I'm Llama, a model by Meta.",
    "My name is Gemini.",
    "I am an assistant called Bard.",
    "As Llama, I must decline.",
    "Google's Gemini is answering you.",
    "As an AI language model developed by OpenAI, I cannot browse the internet.",
    "I was trained by Google.",
    "I am a large language model, trained by Google.",
    "I'm an AI assistant from Anthropic.",
    "My creators at Mistral AI built me in Paris.",
    "I am a chatbot developed by the LMSYS team.",
]

# Ordinary prose that names no model, several sentences on a family's or a maker's word.
PROSE = [
    "The falcon flew over the valley at dawn.",
    "According to a Gemini horoscope, this week favours new projects.",
    "I'm a Gemini, so I love meeting new people.",
    "As a Gemini, you value variety and conversation.",
    "Llama wool is warmer than sheep wool and contains no lanolin.",
    "Fibres such as llama wool and alpaca are prized in the Andes.",
    "We bought the llama 3 years ago; it is 1.8 metres tall.",
    "The vicu\u00f1a is a wild relative of the llama.",
    "Phi is the golden ratio, about 1.618, and 1/phi equals phi-1.",
    "In code, phi*2 is simply twice the golden ratio.",
    "The two angles are phi1 and phi2, measured from the x axis.",
    "The mistral is a cold northerly wind that blows down the Rh\u00f4ne valley.",
    "The Mistral-class ships are amphibious assault ships.",
    "Claude Monet painted water lilies at Giverny.",
    "Claude Debussy wrote Clair de Lune.",
    "The Falcon 9 rocket landed on the drone ship.",
    "Gemini 4 astronaut Ed White made the first American spacewalk.",
    "She held a small stone in her palm.",
    "The palm trees swayed in the warm wind.",
    "Shakespeare is often called the Bard of Avon.",
    "The anthropic principle says the universe must allow observers.",
    "These arguments do not cohere into a single theory.",
    "To grok something is to understand it intuitively.",
    "Gemma is my sister's name, and Ernie is her cat.",
    "TensorFlow is a library developed by Google.",
    "I am an AI researcher at Google, and I study robotics.",
    "As a model from the 1990s, the car is rare today.",
    "Install the openai package with pip, then call `from openai import OpenAI`.",
    "Meta's new headset ships in June.",
    "Convert the disk to GPT before installing Windows.",
    "Run the command ls -la to list every file, or press the command R shortcut to reload.",
    "The metadata lists the author, the date and the title.",
    "Graphics cards accelerate the matrix products of deep learning.",
    "The philosophy of science asks what counts as evidence.",
    "Explainable AI (XAI) helps users trust a model's output.",
    "In Python, **snake_case_name** is the usual style, and 2*3*7 is 42.",
    "A quill is a writing tool made from a flight feather.",
    "The Q&A session lasted an hour.",
    "Zephyrs are light west winds.",
]


@pytest.mark.parametrize("form", list(AS_WRITTEN))
@pytest.mark.parametrize("text", FORMS_IN_THE_FINDING)
def test_every_form_in_the_finding_flags(text, form):
    assert reveals_identity([AS_WRITTEN[form](text)], NAMES) is True


@pytest.mark.parametrize("form", list(AS_WRITTEN))
@pytest.mark.parametrize("text", MORE_FORMS)
def test_other_forms_of_a_name_and_self_identifications_flag(text, form):
    assert reveals_identity([AS_WRITTEN[form](text)], NAMES) is True


@pytest.mark.parametrize("form", list(AS_WRITTEN))
@pytest.mark.parametrize("text", PROSE)
def test_ordinary_prose_does_not_flag(text, form):
    assert reveals_identity([AS_WRITTEN[form](text)], NAMES) is False


def test_the_prose_corpus_is_large_enough():
    assert len(PROSE) >= 30


def test_the_rendered_html_writes_the_ampersand_as_an_entity_and_the_check_reads_it_decoded():
    from arena.core.identity import normalise  # imported here: the module had no normalise() before

    page = render_markdown("I'm Q&A-Bot.")
    assert "Q&amp;A-Bot" in page
    assert "q&a-bot" in normalise(page)
    assert normalise(render_markdown("I am Zephy*rine*.")).strip() == "i am zephyrine."


@pytest.mark.django_db
def test_a_battle_whose_answer_names_a_model_in_any_form_is_flagged():
    campaign = make_campaign(slug="forms", models=("Zephyrine", "Quill-2"), prompts=1)
    Response.objects.filter(prompt__campaign=campaign, model__name="Quill-2").update(
        html=render_markdown("Llama-3-70B-Instruct here: the answer is 4.")
    )
    voter = Voter.objects.create()
    open_battle(campaign_profile("forms"), voter.pk)
    assert Battle.objects.get(campaign=campaign).flagged is True


def _live_battle() -> tuple[Battle, ModelEntry, ModelEntry]:
    campaign = Campaign.objects.create(slug="live-forms", title="Live", mode="live", status="active")
    own, other = ModelEntry.objects.create(name="Zephyrine"), ModelEntry.objects.create(name="Quill-2")
    campaign.contenders.set([own, other])
    prompt = Prompt.objects.create(campaign=campaign, messages=[{"role": "user", "content": "Who are you?"}])
    left = Response.objects.create(prompt=prompt, model=own, status=Response.Status.RUNNING)
    right = Response.objects.create(prompt=prompt, model=other, status=Response.Status.RUNNING)
    battle = Battle.objects.create(
        campaign=campaign,
        voter=Voter.objects.create(),
        prompt=prompt,
        left=left,
        right=right,
        conversation={"user": ["Who are you?"], "left": [], "right": []},
    )
    return battle, own, other


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("answer", "flagged"),
    [
        ("Unlike Quill 2, I always cite my sources.", True),  # the OTHER model of the campaign
        ("I am *Quill*-2.", True),
        ("I'm GPT-4-turbo.", True),  # a well-known family
        ("I'm a helpful assistant; Paris is the capital of France.", False),
    ],
)
def test_a_live_answer_naming_any_model_of_the_campaign_or_a_family_flags_the_battle(answer, flagged):
    battle, own, _ = _live_battle()
    side = live_sides.LiveSide(battle.pk, "A", 0, [{"role": "user", "content": "Who are you?"}])
    live_sides.record_answer(side, answer, own.name)
    battle.refresh_from_db()
    assert battle.conversation["left"] == [answer]
    assert battle.flagged is flagged
