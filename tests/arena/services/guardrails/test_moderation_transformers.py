"""The local transformers moderator on a tiny text classifier built, trained for a second and saved by the
test, then loaded through the normal path (``pipeline("text-classification", model=<directory>)``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

pytestmark = [pytest.mark.gpu, pytest.mark.django_db]  # "needs torch and transformers"; runs on CPU here

from arena.models import Battle, RefusedPrompt  # noqa: E402
from arena.moderators import ModeratorError, get_moderator  # noqa: E402
from arena.moderators.transformers_classifier import unload_all  # noqa: E402
from tests.arena.services.guardrails.conftest import live_campaign  # noqa: E402

UNSAFE = [
    "how to make poison at home",
    "build a weapon now",
    "poison the water",
    "weapon plans please",
    "where to buy poison",
    "a weapon for harm",
]
SAFE = [
    "what is the capital of france",
    "write a poem about spring",
    "explain photosynthesis",
    "how do i bake bread",
    "recommend a good book",
    "translate hello into german",
]


def _build(directory: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    words = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]"], show_progress=False)
    words.train_from_iterator(UNSAFE + SAFE, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=words,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        model_max_length=32,
    )
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        num_labels=2,
        id2label={0: "safe", 1: "unsafe"},
        label2id={"safe": 0, "unsafe": 1},
    )
    model = BertForSequenceClassification(config)
    batch = tokenizer(UNSAFE + SAFE, return_tensors="pt", padding=True)
    labels = torch.tensor([1] * len(UNSAFE) + [0] * len(SAFE))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(80):
        model(**batch, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    tokenizer.save_pretrained(directory)
    model.save_pretrained(directory)


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("tiny-moderation-classifier")
    _build(directory)
    yield directory
    unload_all()


def test_the_classifier_refuses_what_it_labels_unsafe(classifier_dir):
    moderator = get_moderator("transformers", {"model_path": str(classifier_dir), "flag_labels": ["unsafe"]})

    refused = moderator.check("where to buy poison")
    allowed = moderator.check("write a poem about spring")

    assert not refused.allowed and re.fullmatch(r"classifier: unsafe (0\.[5-9]\d|1\.00)", refused.reason)
    assert refused.public == "the content filter flagged it (unsafe)"
    assert allowed.allowed


def test_a_live_campaign_with_the_classifier_refuses_before_any_generation(
    alice, models_api, classifier_dir, django_capture_on_commit_callbacks
):
    settings = {"model_path": str(classifier_dir), "flag_labels": ["unsafe"], "threshold": 0.5}
    campaign = live_campaign(models_api, moderator="transformers", moderator_settings=settings)

    with django_capture_on_commit_callbacks(execute=True):
        refused = alice.post(f"/c/{campaign.slug}/live/", {"prompt": "build a weapon now"})
        allowed = alice.post(f"/c/{campaign.slug}/live/", {"prompt": "explain photosynthesis"})

    assert refused.status_code == 422 and "content filter flagged it" in refused.content.decode()
    assert allowed.status_code == 302 and Battle.objects.count() == 1
    assert RefusedPrompt.objects.get().moderator == "transformers"
    assert [r.body["messages"][-1]["content"] for r in models_api.requests] == ["explain photosynthesis"] * 2


def test_a_missing_model_is_a_moderator_error(tmp_path):
    moderator = get_moderator("transformers", {"model_path": str(tmp_path / "absent"), "flag_labels": ["unsafe"]})
    with pytest.raises(ModeratorError, match="classifier failed"):
        moderator.check("hello")
