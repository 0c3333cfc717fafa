"""A local transformers text-classification model as the moderator (e.g. a toxicity classifier).

Settings: ``model_path`` (a directory or hub id that ``from_pretrained`` loads), ``flag_labels`` (the
labels that refuse a prompt, e.g. ``["toxic"]``), ``threshold`` (score at or above which a flag label
refuses, default 0.5) and ``device`` (default ``cpu``). The pipeline is loaded on first use and kept
per process; the prompt is truncated to the model's length.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from arena.moderators.base import Moderator, ModeratorConfigError, ModeratorError, Verdict

_pipelines: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()


def _pipeline(model_path: str, device: str) -> Any:
    with _lock:
        key = (model_path, device)
        if key not in _pipelines:
            from transformers import pipeline

            _pipelines[key] = pipeline("text-classification", model=model_path, device=device)
        return _pipelines[key]


class TransformersModerator(Moderator):
    kind = "transformers"
    allowed_settings = frozenset({"model_path", "flag_labels", "threshold", "device"})

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        super().__init__(settings)
        self.model_path = self.settings.get("model_path")
        if not isinstance(self.model_path, str) or not self.model_path:
            raise ModeratorConfigError("model_path", "must name a model directory or hub id")
        labels = self.settings.get("flag_labels")
        if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x for x in labels):
            raise ModeratorConfigError("flag_labels", 'must be a non-empty list of labels, e.g. ["toxic"]')
        self.flag_labels = frozenset(labels)
        threshold = self.settings.get("threshold", 0.5)
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
            raise ModeratorConfigError("threshold", "must be a number between 0 and 1")
        self.threshold = float(threshold)
        self.device = self.settings.get("device", "cpu")
        if not isinstance(self.device, str):
            raise ModeratorConfigError("device", 'must be a device name, e.g. "cpu" or "cuda:0"')

    def check(self, text: str) -> Verdict:
        try:
            classify = _pipeline(self.model_path, self.device)
            scores = classify(text, top_k=None, truncation=True)
        except Exception as error:  # a missing model, a broken file, out of memory: no verdict
            raise ModeratorError(f"classifier failed: {type(error).__name__}") from None
        hits = sorted(
            (s["label"], s["score"]) for s in scores if s["label"] in self.flag_labels and s["score"] >= self.threshold
        )
        if not hits:
            return Verdict.allow()
        named = ", ".join(f"{label} {score:.2f}" for label, score in hits)
        return Verdict.refuse(f"classifier: {named}", f"the content filter flagged it ({hits[0][0]})")


def unload_all() -> None:
    """Forget the loaded pipelines (tests)."""
    with _lock:
        _pipelines.clear()
