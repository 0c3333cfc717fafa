"""Fixtures for the rating engine tests. Nothing here needs Django or a database."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[1] / "data" / "llmfao"  # source and licence: its README.md
LLMFAO = DATA / "llmfao.csv"
GOLDEN = DATA / "llmfao-golden.csv"


@pytest.fixture(autouse=True)
def _fresh_weight_cache():
    """Overrides the project-wide autouse fixture of the same name, which imports the Django app:
    the rating engine is pure Python and its tests must run without Django settings."""
    yield


@pytest.fixture(scope="session")
def llmfao() -> dict:
    """The LLMFAO crowd judgements as (left, right, outcome label) lists, in file order."""
    with LLMFAO.open(newline="") as f:
        rows = list(csv.DictReader(f))
    label = {"left": "model_a", "right": "model_b", "tie": "tie"}
    golden: dict[str, dict[str, float]] = {}
    with GOLDEN.open(newline="") as f:
        for r in csv.DictReader(f):
            golden.setdefault(r["algorithm"], {})[r["item"]] = float(r["score"])
    return {
        "a": [r["left"] for r in rows],
        "b": [r["right"] for r in rows],
        "outcome": [label[r["winner"]] for r in rows],
        "golden": golden,
    }


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
