"""Style control: feature extraction from Markdown, and recovery of a planted length effect."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ratings import fit_style_control, style_features
from ratings.counts import Outcome
from ratings.likelihood import outcome_probs
from ratings.style import style_covariates

ANSWER = """# Title
Some **bold** text and __more bold__ here.

## Steps
1. first
2) second
- bullet
* star item

```python
# not a header
x = a ** b  # not bold **either**
```
"""


def test_style_features_count_markdown_outside_code():
    f = style_features(ANSWER)
    assert f["headers"] == 2
    assert f["lists"] == 4
    assert f["bold"] == 2
    assert f["length"] == len(ANSWER.split())
    assert style_features("") == {"length": 0, "headers": 0, "lists": 0, "bold": 0}
    assert style_features("#hashtag and *not a list*")["headers"] == 0


def test_covariates_are_normalised_differences_standardised():
    fa = np.array([[10.0, 0.0], [30.0, 1.0], [20.0, 0.0]])
    fb = np.array([[30.0, 0.0], [10.0, 0.0], [20.0, 0.0]])
    z = style_covariates(fa, fb)
    raw = np.array([-0.5, 0.5, 0.0])
    np.testing.assert_allclose(z[:, 0], (raw - raw.mean()) / raw.std())
    assert np.all(np.isfinite(z)) and z[0, 1] == z[2, 1]


def simulate_verbose_world(seed: int, n_votes: int = 40_000, beta: float = 0.6):
    """Model quality plus a planted preference for longer answers; model 'v' is weak but verbose."""
    rng = np.random.default_rng(seed)
    names = np.array(["s", "t", "u", "v", "w"])
    theta = np.array([0.6, 0.3, 0.0, -0.5, -0.4])
    verbosity = np.array([300, 250, 250, 900, 250])
    a = rng.integers(0, 5, n_votes)
    b = (a + rng.integers(1, 5, n_votes)) % 5
    la = rng.poisson(verbosity[a]).astype(float)
    lb = rng.poisson(verbosity[b]).astype(float)
    zero = np.zeros(n_votes)
    fa, fb = np.column_stack([la, zero, zero, zero]), np.column_stack([lb, zero, zero, zero])
    z = style_covariates(fa, fb)[:, 0]
    pw, _, pt = outcome_probs(theta[a] - theta[b] + beta * z, 0.3)
    u = rng.random(n_votes)
    outcome = np.where(u < pw, Outcome.A_WINS, np.where(u < 1 - pt, Outcome.B_WINS, Outcome.TIE))
    return names[a], names[b], outcome, fa, fb, theta - theta.mean()


def test_style_control_recovers_a_planted_length_effect():
    a, b, o, fa, fb, theta = simulate_verbose_world(1)
    result = fit_style_control(a, b, o, fa, fb)
    length = result.coefficients[0]
    assert length.name == "length"
    assert length.ci_low < 0.6 < length.ci_high and length.ci_low > 0.3
    for c in result.coefficients[1:]:  # constant features: no effect, no NaN
        assert c.estimate == 0.0 and np.isfinite(c.ci_high)
    scale = 400 / np.log(10)
    controlled = (result.rating - 1000) / scale
    raw = (result.raw_rating - 1000) / scale
    v = result.models.index("v")
    assert raw[v] > theta[v] + 0.3  # verbosity inflates the raw rating
    assert abs(controlled[v] - theta[v]) < 0.1
    assert np.abs(controlled - theta).max() < 0.1
    inside = (result.ci_low <= 1000 + scale * theta) & (1000 + scale * theta <= result.ci_high)
    assert inside.sum() >= 4
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["rows"][0]["model"] == "s" and {"raw_rating", "ci_low"} <= set(data["rows"][0])


def test_style_control_accepts_feature_dicts_from_texts():
    texts = {"plain": "short answer", "fancy": "# Head\n- a\n- b\n**bold** " + "word " * 50}
    a = ["plain", "fancy"] * 30
    b = ["fancy", "plain"] * 30
    outcome = ["model_b", "model_a"] * 20 + ["model_a", "model_b"] * 10
    fa = [style_features(texts[m]) for m in a]
    fb = [style_features(texts[m]) for m in b]
    result = fit_style_control(a, b, outcome, fa, fb, ties="half")
    assert [c.name for c in result.coefficients] == ["length", "headers", "lists", "bold"]
    assert all(np.isfinite(result.rating)) and all(np.isfinite(result.ci_low))
    with pytest.raises(ValueError, match="same length"):
        fit_style_control(a, b[:-1], outcome, fa, fb)
