"""A tiny chat GPT-2 built and trained for a second by the tests that need a real local model.

A BPE tokenizer trained on four question/answer pairs, with a chat template, and a 2-layer GPT-2 fitted
to the pairs for 60 steps, saved to a directory and loaded back through ``from_pretrained``: greedy
answers are readable words, so stops, limits and batching are exercised on real text.
"""

from __future__ import annotations

from pathlib import Path

PAIRS = [
    ("What is two plus two?", "Two plus two is four."),
    ("Hello there, how are you?", "I am fine, thank you very much."),
    ("Name a fast animal.", "The quick brown fox jumps over the lazy dog."),
    ("What does Arena do?", "Arena compares language models side by side."),
]
TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
GREEDY = {"do_sample": False, "max_new_tokens": 24}


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def build(directory: Path, *, with_template: bool = True) -> None:
    """Train and save the tiny model and its tokenizer into ``directory``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>", "<|pad|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator([f"{q} {a}" for q, a in PAIRS] * 4, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<|pad|>")
    tokenizer.chat_template = TEMPLATE
    texts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": q}, {"role": "assistant", "content": a}], tokenize=False
        )
        + "<|endoftext|>"
        for q, a in PAIRS
    ]
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=128,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = GPT2LMHeadModel(config)
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-2)
    for _ in range(60):
        model(**batch, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    if not with_template:
        tokenizer.chat_template = None
    tokenizer.save_pretrained(directory)
    model.save_pretrained(directory)
