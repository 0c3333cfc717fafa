"""The pairwise likelihood shared by every fit: Davidson's tie model, with Bradley-Terry as nu = 0.

For a comparison with log-odds ``d`` (strength of the first side minus the second, plus any style
term) Davidson (1970) gives::

    P(first wins) = e^(d/2) / D,  P(second wins) = e^(-d/2) / D,  P(tie) = nu / D,
    D = e^(d/2) + e^(-d/2) + nu,  nu = e^kappa.

With ``nu = 0`` and the tie term dropped this is exactly Bradley-Terry with a tie counted as half a
win and half a loss: its log-likelihood ``(w + t/2) log p + (l + t/2) log(1 - p)`` equals
``(w - l) d/2 - m log(2 cosh(d/2))``, the Davidson formula at nu = 0. So one set of derivatives
serves both tie conventions. A row is a block of votes sharing one design row (a pair of models, or a
single battle with style features) with counts ``win`` (first wins), ``loss`` (second wins), ``tie``.

Derivatives are returned negated (``h_*`` = minus the second derivative) so they are positive
semi-definite weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = ["Rows", "outcome_probs", "solve_spd"]


def outcome_probs(d: np.ndarray, nu: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P(first wins), P(second wins), P(tie), computed without overflow for any ``d``."""
    u = np.exp(-0.5 * np.abs(d))
    den = 1.0 + u * u + nu * u
    big = 1.0 / den
    small = u * u * big
    pos = d >= 0
    return np.where(pos, big, small), np.where(pos, small, big), nu * u * big


def log_norm(d: np.ndarray, nu: np.ndarray | float) -> np.ndarray:
    """``log D`` (see module docstring), stable for large ``|d|``."""
    u = np.exp(-0.5 * np.abs(d))
    return 0.5 * np.abs(d) + np.log1p(u * u + nu * u)


def row_loglik(d: np.ndarray, win: np.ndarray, loss: np.ndarray, tie: np.ndarray, kappa: float | None) -> float:
    """Summed log-likelihood of the rows; ``kappa=None`` means half-win Bradley-Terry."""
    nu = 0.0 if kappa is None else np.exp(kappa)
    ll = np.sum(0.5 * (win - loss) * d - (win + loss + tie) * log_norm(d, nu))
    if kappa is not None:
        ll += kappa * np.sum(tie)
    return float(ll)


def row_derivatives(
    d: np.ndarray, win: np.ndarray, loss: np.ndarray, tie: np.ndarray, nu: np.ndarray | float
) -> tuple[np.ndarray, ...]:
    """Gradient (g_d, g_k) and negated Hessian (h_dd, h_dk, h_kk) of each row's log-likelihood."""
    return derivatives(d, 0.5 * (win - loss), win + loss + tie, tie, nu)


def derivatives(
    d: np.ndarray, half_diff: np.ndarray, m: np.ndarray, tie: np.ndarray, nu: np.ndarray | float
) -> tuple[np.ndarray, ...]:
    """`row_derivatives` from ``half_diff = (win - loss) / 2`` and ``m = win + loss + tie``.

    The bootstrap calls this on millions of cells per iteration, so it avoids branches (``delta =
    (pw - pl) / 2`` is odd in ``d``) and works in place: fresh multi-megabyte temporaries cost more
    than the arithmetic.
    """
    u = np.abs(d)
    u *= -0.5
    np.exp(u, out=u)  # e^(-|d|/2)
    u2 = u * u
    inv = np.multiply(nu, u)
    inv += u2
    inv += 1.0
    np.reciprocal(inv, out=inv)  # 1 / D, after dividing D by e^(|d|/2)
    delta = 1.0 - u2
    delta *= inv
    delta *= 0.5
    np.copysign(delta, d, out=delta)  # (pw - pl) / 2
    both = u2
    both += 1.0
    both *= inv  # pw + pl
    g_d = m * delta
    np.subtract(half_diff, g_d, out=g_d)
    h_dd = delta * delta
    np.subtract(0.25 * both, h_dd, out=h_dd)
    h_dd *= m
    if np.isscalar(nu) and nu == 0:
        zero = np.zeros_like(d)
        return g_d, tie - zero, h_dd, zero, zero
    m_pt = u
    m_pt *= nu
    m_pt *= inv
    m_pt *= m  # m * P(tie)
    g_k = tie - m_pt
    h_dk = m_pt * delta
    np.negative(h_dk, out=h_dk)
    m_pt *= both
    return g_d, g_k, h_dd, h_dk, m_pt


def row_score_products(
    d: np.ndarray, win: np.ndarray, loss: np.ndarray, tie: np.ndarray, nu: np.ndarray | float
) -> tuple[np.ndarray, ...]:
    """Sums over votes of products of per-vote scores, for the sandwich "meat" J.

    Each vote is the independent unit: a tie contributes its own score ``(-delta, 1 - pt)`` once,
    not two half-votes, which is what keeps half-win intervals honest about their variance.
    """
    pw, pl, pt = outcome_probs(d, nu)
    delta = 0.5 * (pw - pl)
    sw, sl, st = 0.5 - delta, -0.5 - delta, -delta
    j_dd = win * sw * sw + loss * sl * sl + tie * st * st
    j_dk = -(win * sw + loss * sl) * pt + tie * st * (1.0 - pt)
    j_kk = (win + loss) * pt * pt + tie * (1.0 - pt) ** 2
    return j_dd, j_dk, j_kk


@dataclass(frozen=True, eq=False)
class Rows:
    """Design of a pairwise fit: row r compares model ``ia[r]`` (first) with ``ib[r]`` and may carry
    covariates ``z[r]`` (style features). Parameters are ``[theta (n), beta (k), kappa (0 or 1)]``."""

    n: int
    ia: np.ndarray
    ib: np.ndarray
    win: np.ndarray
    loss: np.ndarray
    tie: np.ndarray
    z: np.ndarray | None = None

    @property
    def k(self) -> int:
        return 0 if self.z is None else self.z.shape[1]

    def linear(self, theta: np.ndarray, beta: np.ndarray) -> np.ndarray:
        d = theta[self.ia] - theta[self.ib]
        return d if self.z is None else d + self.z @ beta

    def incidence(self) -> sp.csr_matrix:
        """Sparse n x rows matrix with +1 at the first model and -1 at the second."""
        r = np.arange(len(self.ia))
        data = np.concatenate([np.ones(len(r)), -np.ones(len(r))])
        return sp.csr_matrix(
            (data, (np.concatenate([self.ia, self.ib]), np.concatenate([r, r]))), shape=(self.n, len(r))
        )

    def component_labels(self) -> np.ndarray:
        """Connected piece of each model in the comparison graph."""
        from scipy.sparse.csgraph import connected_components

        graph = sp.coo_matrix((np.ones(len(self.ia)), (self.ia, self.ib)), shape=(self.n, self.n))
        return connected_components(graph, directed=False)[1]

    def gauge(self) -> np.ndarray:
        """``sum over connected pieces c of 1_c 1_c^T / |c|`` (n x n).

        The likelihood does not change when all strengths of a piece shift together. Adding this
        matrix to the Hessian removes those flat directions without moving the optimum, so Newton
        steps and covariances are not at the mercy of the tiny ridge (whose 1/ridge would amplify
        rounding noise along them).
        """
        labels = self.component_labels()
        same = labels[:, None] == labels[None, :]
        return same / same.sum(1, keepdims=True)

    def centre(self, theta: np.ndarray) -> np.ndarray:
        """Strengths shifted to mean 0 within each connected piece (the reported convention)."""
        labels = self.component_labels()
        means = np.bincount(labels, theta) / np.bincount(labels)
        return theta - means[labels]

    def gradient(self, g_d: np.ndarray, g_k: np.ndarray | None) -> np.ndarray:
        n = self.n
        parts = [np.bincount(self.ia, g_d, n) - np.bincount(self.ib, g_d, n)]
        if self.z is not None:
            parts.append(self.z.T @ g_d)
        if g_k is not None:
            parts.append(np.array([g_k.sum()]))
        return np.concatenate(parts)

    def assemble(self, a_dd: np.ndarray, a_dk: np.ndarray | None, a_kk: np.ndarray | None) -> np.ndarray:
        """Sum over rows of ``x x^T`` weighted blocks, with ``x = [e_ia - e_ib, z]`` and kappa last."""
        n, k = self.n, self.k
        p = n + k + (a_dk is not None)
        out = np.zeros((p, p))
        pair = np.bincount(self.ia * n + self.ib, a_dd, n * n).reshape(n, n)
        pair = pair + pair.T
        out[:n, :n] = np.diag(pair.sum(1)) - pair
        if self.z is not None:
            za = self.z * a_dd[:, None]
            cross = np.stack(
                [np.bincount(self.ia, za[:, c], n) - np.bincount(self.ib, za[:, c], n) for c in range(k)], axis=1
            )
            out[:n, n : n + k] = cross
            out[n : n + k, :n] = cross.T
            out[n : n + k, n : n + k] = self.z.T @ za
        if a_dk is not None:
            col = np.bincount(self.ia, a_dk, n) - np.bincount(self.ib, a_dk, n)
            if self.z is not None:
                col = np.concatenate([col, self.z.T @ a_dk])
            out[:-1, -1] = col
            out[-1, :-1] = col
            out[-1, -1] = a_kk.sum()
        return out


def solve_spd(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Solve a batch of symmetric positive definite systems ``a @ x = g`` (shapes B x p x p, B x p).

    Cholesky, then substitution vectorised over the batch (LAPACK's for a single system).
    ``np.linalg.solve`` would do, but OpenBLAS runs its LU for matrices above 100 x 100 on several
    threads, and between numpy calls those threads can stall for up to a second on a busy 2-core
    machine; Cholesky stays on one.
    """
    low = np.linalg.cholesky(a)
    if a.shape[0] == 1:  # one system: LAPACK's triangular solves, no batch to vectorise over
        from scipy.linalg import solve_triangular

        y = solve_triangular(low[0], g[0], lower=True, check_finite=False)
        return solve_triangular(low[0].T, y, lower=False, check_finite=False)[None]
    up = np.ascontiguousarray(low.transpose(0, 2, 1))
    p = a.shape[-1]
    rhs = g.reshape(g.shape[0], p, -1)
    y = np.empty_like(rhs)
    for j in range(p):
        dot = np.einsum("bk,bkr->br", low[:, j, :j], y[:, :j])
        y[:, j] = (rhs[:, j] - dot) / low[:, j, j, None]
    x = np.empty_like(rhs)
    for j in range(p - 1, -1, -1):
        dot = np.einsum("bk,bkr->br", up[:, j, j + 1 :], x[:, j + 1 :])
        x[:, j] = (y[:, j] - dot) / up[:, j, j, None]
    return x.reshape(g.shape)
