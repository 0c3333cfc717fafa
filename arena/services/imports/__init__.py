"""Importing prompts and pre-written responses from files, and whole campaigns from one JSON file.

Every import is all or nothing: every problem of the file is reported with its line number, and only
a clean file is kept, written in one transaction (Arena's JSONL is written as it is read, and rolled
back if a problem turns up; the other formats are checked whole first). Re-importing the same file
is idempotent: prompts are matched by ``external_id``, responses by (prompt, model).

Formats (docs/imports.md): Arena's prompt files in JSONL or CSV (`plain`), TRL preference pairs and
arena battle records (`preferences`); `files` reads a file in any of them, `writer` stores the rows.
The admin page, the ``import_prompts`` command and bench/imports.py all go through `import_file`.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from arena.models import Campaign
from arena.services.imports.campaigns import load_campaign
from arena.services.imports.files import (
    FORMATS,
    ImportOptions,
    PromptFile,
    checked_row,
    detect_format,
    open_prompt_file,
    parse_prompt_file,
    read_prompt_file,
)
from arena.services.imports.preferences import DEFAULT_CHOSEN_MODEL, DEFAULT_REJECTED_MODEL
from arena.services.imports.rows import ImportFailed, ImportSummary, PromptRow, clean_messages
from arena.services.imports.writer import check_rows, import_prompts

__all__ = [
    "DEFAULT_CHOSEN_MODEL",
    "DEFAULT_REJECTED_MODEL",
    "FORMATS",
    "ImportFailed",
    "ImportOptions",
    "ImportSummary",
    "PromptRow",
    "clean_messages",
    "detect_format",
    "import_file",
    "import_prompts",
    "load_campaign",
    "parse_prompt_file",
    "read_prompt_file",
]


def import_file(campaign: Campaign, name: str, data: bytes, options: ImportOptions | None = None) -> ImportSummary:
    """Parse a file and write it into the campaign; ImportFailed (nothing written) on any problem.

    The whole file is checked in one pass: the records' own errors and those against the campaign
    (unknown models, repeated ids) come together, in line order.
    """
    options = options or ImportOptions()
    prompt_file = open_prompt_file(name, data, options)
    del data  # the decoded text is what is read: the bytes can go (a file's size less at the peak)
    with _objects_before_left_alone():
        return _import(campaign, prompt_file, options)


@contextmanager
def _objects_before_left_alone() -> Iterator[None]:
    """The garbage collector leaves the objects that existed before the import alone (gc.freeze):
    each collection triggered by the rows read would otherwise scan all of Django and the project
    again (a fifth of a re-import's CPU). They are handed back to it afterwards."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _import(campaign: Campaign, prompt_file: PromptFile, options: ImportOptions) -> ImportSummary:
    if prompt_file.streams and not options.add_models:
        return _import_in_one_pass(campaign, prompt_file)
    checked, errors = prompt_file.check()
    models_by_name = dict(campaign.contenders.values_list("name", "id"))
    errors += check_rows(checked, models_by_name, options.add_models)
    if errors:
        raise ImportFailed(sorted(errors, key=error_line))
    # The file is read again as it is written, batch by batch (JSONL is never held as rows).
    return import_prompts(campaign, prompt_file.rows(), add_models=options.add_models, checked=checked)


def _import_in_one_pass(campaign: Campaign, prompt_file: PromptFile) -> ImportSummary:
    """Read a JSONL file once, writing its rows as they come, in one transaction: the same checks
    and errors as checking first (a record's own errors, then check_rows on what was read), but a
    file with an error is rolled back instead of never written. Rows stop going to the writer at the
    first one that is wrong or cannot be written (an unknown model, answers without an external_id)."""
    models_by_name = dict(campaign.contenders.values_list("name", "id"))
    checked: list[PromptRow] = []
    errors: list[str] = []

    def rows() -> Iterator[PromptRow]:
        writing = True
        for item in prompt_file.items():
            if isinstance(item, str):
                errors.append(item)
                writing = False
                continue
            checked.append(checked_row(item))
            if item.responses and (not item.external_id or not models_by_name.keys() >= item.responses.keys()):
                writing = False  # check_rows names the problem once every row is read
            if writing:
                yield item

    def verify() -> list[str]:
        found = errors + check_rows(checked, models_by_name, add_models=False)
        if not checked and not found:
            found.append("the file holds no prompt")
        return sorted(found, key=error_line)

    return import_prompts(campaign, rows(), verify=verify)


def error_line(error: str) -> int:
    """The line number an error starts with ("line 12: ..."), 0 for a file-wide one."""
    head, _, _ = error.partition(":")
    number = head.removeprefix("line ").strip()
    return int(number) if head.startswith("line ") and number.isdigit() else 0
