"""TRL and battles files are untrusted: malformed ones fail by line, and nothing is half-imported.

Property-based (hypothesis). Files mix valid records (from a small pool of ids, prompts, models and
answers, so that repeated ids, conflicting answers and diverging conversations happen often),
records with one field broken or missing, random JSON values, broken JSON and blank lines. Whatever
the file:

- parsing returns rows or raises ImportFailed whose every message is "line N: ..." with N a non-blank
  line of the file (or one of the few file-level messages);
- importing then either writes exactly the parsed rows (every prompt and answer is stored, and each
  prompt's answers can be handed out as items) or raises ImportFailed and leaves every table as it
  was. Any other exception fails the test. Both write paths run (PostgreSQL COPY and ORM).

Examples per test: IMPORT_EXAMPLES (default 200; parse-only tests run 4x as many).
"""

from __future__ import annotations

import json
import re
from itertools import combinations, count

from hypothesis import event, given
from hypothesis import strategies as st

from arena.models import Item, ModelEntry, Prompt, Response
from arena.services.imports import ImportFailed, ImportOptions, import_prompts, parse_prompt_file
from tests.arena.services.imports.test_untrusted_files import FILE_MESSAGES, MODELS, fast, with_db  # the same settings
from tests.factories import make_campaign
from tests.modes import on_postgres

LINE_MESSAGE = re.compile(r"^line (\d+): .+", re.S)  # the line number captured, to check it is a real line

# --- strategies -----------------------------------------------------------------------------------

text = st.text(st.characters(codec="utf-8"), max_size=30)  # NUL, controls, U+2028 and other line breaks included
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3), max_leaves=8
)
model = st.sampled_from([*MODELS, "Unknown", "", " Alpha", "x" * 101])
answer = st.sampled_from(["Yes.", "No.", "**Maybe**", "", "a\u2028b"]) | text
message = st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "tool"]), "content": answer})
PROMPTS = [
    [{"role": "user", "content": "Q1?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q1?"}],
    [{"role": "user", "content": "Q2?"}, {"role": "assistant", "content": "A2"}, {"role": "user", "content": "More?"}],
]
prompt_messages = st.sampled_from(PROMPTS) | st.lists(message, min_size=1, max_size=3)
question_id = st.sampled_from(["q1", "q2", "q3", 7]) | text


def _assistant(content):
    return [{"role": "assistant", "content": content}]


@st.composite
def _valid_parts(draw) -> tuple:
    """Parts of a well-formed record: an id whose prompt is usually the same each time, two distinct
    known models, and answers from a small pool (so that a model sometimes contradicts itself)."""
    index = draw(st.integers(0, len(PROMPTS) - 1))
    qid = draw(st.sampled_from([f"q{index}", index]))
    prompt = PROMPTS[index] if draw(st.integers(0, 9)) else draw(st.sampled_from(PROMPTS))
    first, second = draw(st.permutations(MODELS))[:2]
    answers = st.sampled_from(["Yes.", "**No**", "", "a\u2028b <script>x</script>"])
    return qid, prompt, first, second, draw(answers), draw(answers)


@st.composite
def trl_records(draw, valid: bool = False) -> dict:
    qid, prompt, chosen_model, rejected_model, chosen, rejected = draw(_valid_parts())
    if not valid:
        prompt, chosen, rejected = draw(prompt_messages), draw(answer), draw(answer)
    if draw(st.booleans()):  # explicit prompt, conversational or standard (plain texts)
        texts = draw(st.booleans()) and len(prompt) == 1
        record = {
            "prompt": prompt[-1]["content"] if texts else prompt,
            "chosen": chosen if texts else _assistant(chosen),
            "rejected": rejected if texts else _assistant(rejected),
        }
    else:  # implicit prompt; invalid ones may start the two conversations differently
        other = prompt if valid else draw(st.sampled_from([prompt]) | prompt_messages)
        record = {"chosen": [*prompt, *_assistant(chosen)], "rejected": [*other, *_assistant(rejected)]}
    fields = {"question_id": qid, "chosen_model": chosen_model, "rejected_model": rejected_model}
    for key, value in fields.items():
        if valid or draw(st.booleans()):
            record[key] = value if valid or draw(st.booleans()) else draw({"question_id": question_id}.get(key, model))
    return record


@st.composite
def battle_records(draw, valid: bool = False) -> dict:
    qid, prompt, model_a, model_b, answer_a, answer_b = draw(_valid_parts())
    other = prompt
    if not valid:
        qid, model_a, model_b = draw(question_id), draw(model), draw(model)
        prompt = draw(prompt_messages)
        other = draw(st.sampled_from([prompt, prompt]) | prompt_messages)  # mostly the same prompt on both sides
    return {
        "question_id": qid,
        "model_a": model_a,
        "model_b": model_b,
        "winner": "model_a",
        "turn": 1,
        "anony": True,
        "language": draw(st.sampled_from(["en", "unknown", "English"]) | (st.just(None) if valid else text)),
        "conversation_a": [*prompt, *_assistant(answer_a)],
        "conversation_b": [*other, *_assistant(answer_b)],
    }


def damaged(records):
    """A record with one field replaced by any JSON value, or removed."""

    @st.composite
    def build(draw):
        record = draw(records)
        key = draw(st.sampled_from(sorted(record)))
        if draw(st.booleans()):
            del record[key]
        else:
            record[key] = draw(json_values)
        return record

    return build()


def files(records):
    """Files of well-formed records (which may still contradict each other), or of anything."""
    line = (
        records()
        | damaged(records())
        | json_values
        | text
        | st.sampled_from(["{broken json", "", "   ", '{"question_id": "q1", "prompt": "\\ud800"}'])
    )
    well_formed = st.lists(records(valid=True) | st.just(""), min_size=1, max_size=6)
    return (well_formed | st.lists(line, min_size=0, max_size=8)).map(_jsonl)


def _jsonl(lines: list) -> bytes:
    out = [line if isinstance(line, str) else json.dumps(line, ensure_ascii=False) for line in lines]
    return "\n".join(out).encode("utf-8", "surrogatepass")


trl_files = files(trl_records)
battle_files = files(battle_records)

# --- checks ---------------------------------------------------------------------------------------


def _check_failure(error: ImportFailed, data: bytes) -> None:
    assert error.errors, "an ImportFailed without messages"
    assert error.message.startswith("Nothing was imported")
    lines = data.decode("utf-8", "replace").split("\n")
    for message in error.errors:
        match = LINE_MESSAGE.match(message)
        if match is None:
            assert message.startswith(FILE_MESSAGES), message
            continue
        number = int(match.group(1))
        assert 1 <= number <= len(lines) and lines[number - 1].strip(), f"{message!r} names no record"


def _parse(data: bytes, fmt: str, options: ImportOptions):
    try:
        return parse_prompt_file(
            "upload.jsonl",
            data,
            ImportOptions(format=fmt, chosen_model=options.chosen_model, rejected_model=options.rejected_model),
        )
    except ImportFailed as error:
        _check_failure(error, data)
        return None


def _tables() -> tuple:
    return (
        list(Prompt.objects.order_by("id").values_list("id", "external_id", "messages", "category", "language")),
        list(Response.objects.order_by("id").values_list("id", "prompt_id", "model_id", "content", "html", "status")),
        Item.objects.count(),
        ModelEntry.objects.count(),
        sorted(ModelEntry.objects.filter(campaigns__isnull=False).values_list("campaigns", "name")),
    )


def _import(campaign, data: bytes, fmt: str, options: ImportOptions, use_copy: bool) -> None:
    before = _tables()
    rows = _parse(data, fmt, options)
    if rows is None:
        event("refused while parsing")
        assert _tables() == before
        return
    try:
        import_prompts(campaign, rows, add_models=options.add_models, use_copy=use_copy)
    except ImportFailed as error:
        event("refused before writing")
        _check_failure(error, data)
        assert _tables() == before, "a refused import wrote something"
        return
    event("imported")
    for row in rows:  # everything parsed is stored, and each pair of answers is an item
        prompt = Prompt.objects.get(campaign=campaign, external_id=row.external_id)
        assert (prompt.messages, prompt.category, prompt.language) == (row.messages, row.category, row.language)
        stored = dict(prompt.responses.values_list("model__name", "content"))
        assert stored == row.responses
        items = set(Item.objects.filter(prompt=prompt).values_list("model_lo__name", "model_hi__name"))
        assert len(items) == len(list(combinations(row.responses, 2)))


options = st.builds(
    ImportOptions,
    chosen_model=st.sampled_from(["chosen", "Alpha", "Beta"]),
    rejected_model=st.sampled_from(["rejected", "Beta", "Gamma", "Alpha"]),
    add_models=st.booleans(),
)

# --- parsing only ---------------------------------------------------------------------------------


@fast
@given(trl_files, options)
def test_malformed_trl_files_are_refused_by_line(data, opts):
    _parse(data, "trl", opts)


@fast
@given(battle_files, options)
def test_malformed_battle_files_are_refused_by_line(data, opts):
    _parse(data, "battles", opts)


@fast
@given(st.binary(max_size=200), st.sampled_from(["trl", "battles", "auto"]))
def test_random_bytes_are_refused_cleanly_in_every_format(data, fmt):
    _parse(data, fmt, ImportOptions())


# --- parsing and writing --------------------------------------------------------------------------


_slugs = count()


def _campaign(prompts: int):
    """A fresh campaign per example (examples share the test's transaction)."""
    return make_campaign(slug=f"imp-{next(_slugs)}", models=MODELS, prompts=prompts)


@with_db
@given(data=trl_files, opts=options, use_copy=st.booleans() if on_postgres() else st.just(False))
def test_trl_imports_are_all_or_nothing(db, data, opts, use_copy):
    campaign = _campaign(prompts=0)
    _import(campaign, data, "trl", opts, use_copy)
    _import(campaign, data, "trl", opts, use_copy)  # the same file again: idempotent or refused again


@with_db
@given(data=battle_files, opts=options, use_copy=st.booleans() if on_postgres() else st.just(False))
def test_battle_imports_are_all_or_nothing(db, data, opts, use_copy):
    campaign = _campaign(prompts=1)
    _import(campaign, data, "battles", opts, use_copy)
