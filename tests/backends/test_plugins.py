"""The plugin registry (backends.plugins) on its own, with real modules as the plugins."""

from __future__ import annotations

import pytest

from backends.plugins import Registry


class Sink:
    """A plugin base for the tests: built from settings like a backend."""

    def __init__(self, settings=None) -> None:
        self.settings = dict(settings or {})


class FileSink(Sink):
    pass


class Unknown(LookupError):
    pass


def registry(targets: dict[str, str]) -> Registry[Sink]:
    return Registry(Sink, targets, noun="sink", unknown=Unknown)


def test_a_kind_is_built_from_its_settings():
    sinks = registry({"file": f"{__name__}:FileSink"})

    sink = sinks.create("file", {"path": "/tmp/x"})

    assert isinstance(sink, FileSink) and sink.settings == {"path": "/tmp/x"}
    assert sinks.cls("file") is FileSink


def test_an_unknown_kind_names_it_and_the_known_ones():
    with pytest.raises(Unknown) as exc:
        registry({"file": f"{__name__}:FileSink", "base": f"{__name__}:Sink"}).create("tape")

    assert str(exc.value) == "unknown sink 'tape'; known: base, file"


def test_kinds_are_sorted_and_a_kind_added_later_is_found():
    targets = {"file": f"{__name__}:FileSink"}
    sinks = registry(targets)
    targets["base"] = f"{__name__}:Sink"

    assert sinks.kinds() == ["base", "file"]
    assert sinks.cls("base") is Sink


def test_a_target_that_is_not_a_subclass_is_refused():
    with pytest.raises(TypeError, match="not a subclass of Sink"):
        registry({"json": "json:JSONDecoder"}).cls("json")
    with pytest.raises(TypeError, match="not a subclass of Sink"):
        registry({"dumps": "json:dumps"}).cls("dumps")


def test_a_missing_module_or_class_is_an_import_error():
    with pytest.raises(ModuleNotFoundError):
        registry({"gone": "backends.no_such_module:Sink"}).cls("gone")
    with pytest.raises(AttributeError):
        registry({"gone": f"{__name__}:NoSuchClass"}).cls("gone")
