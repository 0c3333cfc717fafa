"""Preference files as prompts with pre-written answers: TRL preference pairs and arena battle records.

Both formats repeat a prompt once per comparison; Arena keeps one prompt and one answer per model.
Records with the same id merge into one prompt: their prompt messages must be the same, and a model
must give the same answer each time it appears (else the line is refused, naming the earlier line).
Verdicts (which answer won) are not imported.

- TRL (https://huggingface.co/docs/trl/dataset_formats), conversational or standard, explicit or
  implicit prompt: {"prompt": [...] | "text", "chosen": [...] | "text", "rejected": [...] | "text"}.
  Answer models come from "chosen_model" / "rejected_model" (written by Arena's trl-jsonl export), else
  from the import options. The prompt id is "question_id", else a hash of the prompt's messages; a
  prompt repeated in a file without ids gets "-2", "-3", ... in order, so re-imports match.
- Battles (the public Chatbot Arena battle records, Arena's battles-jsonl export): "question_id",
  "model_a", "model_b", "conversation_a", "conversation_b". Each conversation is the prompt followed
  by that model's last answer; the messages before the last answers must be the same on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from arena.services.imports.plain import expect_object, json_lines
from arena.services.imports.rows import (
    PromptRow,
    answer_text,
    check_storable,
    clean_messages,
    content_id,
    label_field,
    model_name,
    question_id,
)

DEFAULT_CHOSEN_MODEL = "chosen"
DEFAULT_REJECTED_MODEL = "rejected"


@dataclass(frozen=True)
class Record:
    """One prompt and the answers one line gives to it."""

    external_id: str
    messages: list[dict[str, str]]
    answers: dict[str, str]
    category: str = ""
    language: str = ""


class PromptMerger:
    """Collects records into rows, one per prompt id, refusing records that contradict earlier ones."""

    def __init__(self) -> None:
        self.rows: dict[str, PromptRow] = {}
        # The line of an answer that came after its prompt's first line (the others are on row.line).
        self.answer_lines: dict[tuple[str, str], int] = {}

    def add(self, line: int, record: Record) -> None:
        candidate = PromptRow(
            line, record.external_id, record.messages, record.category, record.language, dict(record.answers)
        )
        check_storable(candidate)
        row = self.rows.get(record.external_id)
        if row is not None:
            if row.messages != record.messages:
                raise ValueError(f"question_id {record.external_id!r} has a different prompt on line {row.line}")
            for model, answer in record.answers.items():
                if row.responses.get(model, answer) != answer:
                    earlier = self.answer_lines.get((record.external_id, model), row.line)
                    raise ValueError(
                        f"model {model!r} answers question_id {record.external_id!r} differently on line {earlier}"
                    )
        else:
            row = self.rows[record.external_id] = PromptRow(
                line, record.external_id, record.messages, record.category, record.language
            )
        for model, answer in record.answers.items():
            if model not in row.responses:
                row.responses[model] = answer
                if line != row.line:
                    self.answer_lines[(record.external_id, model)] = line


def _language(value: Any) -> str:
    language = label_field(value, "language", 16)
    return "" if language == "unknown" else language  # what Arena's exports write for "not set"


def split_conversation(value: Any, name: str) -> tuple[list[dict[str, str]], str]:
    """A conversation ending with an assistant answer, as (prompt messages, answer)."""
    if not isinstance(value, list) or not value:
        raise ValueError(f"{name} must be a non-empty list of {{role, content}} messages")
    last = value[-1]
    if not isinstance(last, dict) or last.get("role") != "assistant":
        raise ValueError(f"{name} must end with the assistant's answer")
    answer = answer_text(last.get("content"), name)
    if len(value) < 2:
        raise ValueError(f"{name} has no prompt before its answer")
    try:
        return clean_messages(value[:-1]), answer
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None


def _completion(value: Any, name: str) -> str:
    """The answer of a TRL record with an explicit prompt: one assistant message, or a text."""
    if isinstance(value, str):
        return answer_text(value, name)
    one = value[0] if isinstance(value, list) and len(value) == 1 else None
    if not isinstance(one, dict) or one.get("role") != "assistant":
        raise ValueError(f'{name} must be a text or one assistant message [{{"role": "assistant", "content": ...}}]')
    return answer_text(one.get("content"), name)


@dataclass(frozen=True)
class TrlOptions:
    chosen_model: str = DEFAULT_CHOSEN_MODEL
    rejected_model: str = DEFAULT_REJECTED_MODEL


def trl_record(value: Any, options: TrlOptions, occurrences: dict[str, int]) -> Record:
    record = expect_object(value)
    if "chosen" not in record or "rejected" not in record:
        raise ValueError('a TRL preference record needs "chosen" and "rejected"')
    if "prompt" in record:
        messages = clean_messages(record["prompt"])
        chosen = _completion(record["chosen"], "chosen")
        rejected = _completion(record["rejected"], "rejected")
    else:  # implicit prompt: two whole conversations that differ only in their last answers
        messages, chosen = split_conversation(record["chosen"], "chosen")
        other, rejected = split_conversation(record["rejected"], "rejected")
        if other != messages:
            raise ValueError("chosen and rejected differ before their last answers (no shared prompt)")
    chosen_model = model_name(record.get("chosen_model") or options.chosen_model, "chosen_model")
    rejected_model = model_name(record.get("rejected_model") or options.rejected_model, "rejected_model")
    if chosen_model == rejected_model:
        raise ValueError(f"chosen and rejected are both answers of {chosen_model!r}; two models are needed")
    if record.get("question_id") is not None:
        external_id = question_id(record["question_id"])
    else:
        base = content_id(messages, "trl")
        occurrences[base] = occurrences.get(base, 0) + 1
        external_id = base if occurrences[base] == 1 else f"{base}-{occurrences[base]}"
    if not external_id:
        raise ValueError("question_id is empty")
    return Record(
        external_id=external_id,
        messages=messages,
        answers={chosen_model: chosen, rejected_model: rejected},
        category=label_field(record.get("category"), "category", 64),
        language=_language(record.get("language")),
    )


def battle_record(value: Any) -> Record:
    record = expect_object(value)
    missing = [k for k in ("question_id", "model_a", "model_b", "conversation_a", "conversation_b") if k not in record]
    if missing:
        raise ValueError(f"a battle record needs {', '.join(missing)}")
    external_id = question_id(record["question_id"])
    if not external_id:
        raise ValueError("question_id is empty")
    model_a, model_b = model_name(record["model_a"], "model_a"), model_name(record["model_b"], "model_b")
    if model_a == model_b:
        raise ValueError(f"model_a and model_b are both {model_a!r}")
    messages, answer_a = split_conversation(record["conversation_a"], "conversation_a")
    other, answer_b = split_conversation(record["conversation_b"], "conversation_b")
    if other != messages:
        raise ValueError(
            "conversation_a and conversation_b differ before their last answers (a multi-turn battle in which "
            "each model answered its own earlier turns); Arena keeps one prompt with one answer per model, so "
            "remove the line or cut both conversations to their first turn"
        )
    return Record(
        external_id=external_id,
        messages=messages,
        answers={model_a: answer_a, model_b: answer_b},
        category=label_field(record.get("category"), "category", 64),
        language=_language(record.get("language_code", record.get("language"))),  # Arena's exports: the code
    )


def parse_trl(text: str, options: TrlOptions | None = None) -> tuple[list[PromptRow], list[str]]:
    options = options or TrlOptions()
    occurrences: dict[str, int] = {}
    return _merge(text, lambda value: trl_record(value, options, occurrences))


def parse_battles(text: str) -> tuple[list[PromptRow], list[str]]:
    return _merge(text, battle_record)


def _merge(text: str, read) -> tuple[list[PromptRow], list[str]]:
    merger, errors = PromptMerger(), []
    for number, value in json_lines(text):
        try:
            merger.add(number, read(value))
        except ValueError as error:
            errors.append(f"line {number}: {error}")
    return list(merger.rows.values()), errors
