"""Plugins by kind: a short name maps to ``"module:Class"``, and the module is imported on first use,
so a process without torch can still serve the kinds that do not need it.

Pure Python (no Django, no arena), so that the backends (:mod:`backends.registry`) and the
moderators (``arena.moderators.registry``) share it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Subclasses of ``base`` by kind, each built from its settings: ``cls(settings)``.

    ``targets`` maps a kind to ``"module:Class"`` (the mapping is read on every lookup, so a kind
    added to it later is found). An unknown kind raises ``unknown(message)``, the message naming the
    kind and the known ones: "unknown <noun> 'x'; known: a, b".
    """

    def __init__(
        self, base: type[T], targets: Mapping[str, str], *, noun: str, unknown: Callable[[str], Exception]
    ) -> None:
        self.base = base
        self.targets = targets
        self.noun = noun
        self.unknown = unknown

    def kinds(self) -> list[str]:
        """The registered kinds, sorted."""
        return sorted(self.targets)

    def cls(self, kind: str) -> type[T]:
        """The class for ``kind`` (imports its module)."""
        target = self.targets.get(kind)
        if target is None:
            raise self.unknown(f"unknown {self.noun} {kind!r}; known: {', '.join(self.kinds())}")
        module_name, _, class_name = target.partition(":")
        found = getattr(importlib.import_module(module_name), class_name)
        if not (isinstance(found, type) and issubclass(found, self.base)):
            raise TypeError(f"{target} (registered as {kind!r}) is not a subclass of {self.base.__name__}")
        return found

    def create(self, kind: str, settings: Mapping[str, Any] | None = None) -> T:
        """An instance of ``kind`` configured by ``settings``."""
        return self.cls(kind)(settings)  # type: ignore[call-arg]
