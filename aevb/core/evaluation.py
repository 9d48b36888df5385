"""Evaluation figures of any number of rows, from fixed-size statistics of each chunk.

Each chunk of rows is summarised in one float64 vector (:func:`chunk_statistics`):
its row count; the sums over its rows of the ELBO, the reconstruction, the KL, the
effective sample size, the exact log p(x) and each dimension's KL; and, for the
log p(x) estimate and each posterior mean E_q[z_i|x], the chunk's mean and its sum
of squared deviations from it. :func:`combine` merges the chunks in their order with
the pairwise update of Chan, Golub & LeVeque (1979) (:func:`aevb.column_statistics.merge_moments`),
so memory does not grow with the rows, and the figures do not depend on which
process summarised which chunk. A figure a model does not have (no exact log p(x),
a KL that does not split by dimension) is carried as NaN and reported as None.
"""

from __future__ import annotations

import math

import numpy as np

from ..data.column_statistics import merge_moments, moments

# A latent dimension is active when its posterior mean varies across rows by more than this
# (Burda et al., 2016: Cov_x(E_q[z_i|x]) > 0.01).
ACTIVE_UNIT_THRESHOLD = 0.01
# Layout of a chunk's vector: these sums, then the estimate's (mean, M2), then per latent
# dimension the code means, their M2 and the KL sums.
SUMS = ("n", "elbo", "reconstruction", "kl", "effective_sample_size", "exact_log_likelihood")


def bits_per_dim(log_likelihood, n_features: int):
    """Nats per row -> bits per dimension, negated: -log p(x) / (D log 2) (lower is better)."""
    return -log_likelihood / (n_features * math.log(2))


def width(latent_dim: int) -> int:
    """Length of one chunk's statistics vector."""
    return len(SUMS) + 2 + 3 * latent_dim


def chunk_statistics(rows: dict[str, np.ndarray], latent_dim: int) -> np.ndarray:
    """The statistics vector of one chunk from its per-row arrays in the user's units
    (:func:`aevb.vae.statistics.row_statistics` after the Jacobian): ``elbo``,
    ``reconstruction``, ``kl``, ``log_likelihood``, ``effective_sample_size`` (n,), ``code``
    (n, latent_dim), and where the model has them ``kl_per_dimension`` (n, latent_dim)
    and ``exact_log_likelihood`` (n,)."""
    log_likelihood, codes = rows["log_likelihood"], rows["code"]
    exact = float(rows["exact_log_likelihood"].sum()) if "exact_log_likelihood" in rows else math.nan
    sums = [len(log_likelihood), rows["elbo"].sum(), rows["reconstruction"].sum(), rows["kl"].sum(),
            rows["effective_sample_size"].sum(), exact]
    ll_mean, ll_m2 = moments(log_likelihood)
    code_mean, code_m2 = moments(codes)
    kl_dims = rows.get("kl_per_dimension")
    kl_sums = np.full(latent_dim, math.nan) if kl_dims is None else kl_dims.sum(axis=0)
    return np.concatenate([sums, [ll_mean, ll_m2], code_mean, code_m2, kl_sums])


def combine(statistics: np.ndarray, latent_dim: int, *, k: int, proposal: str, n_features: int, data: str) -> dict:
    """The figures of ``LatentModelEstimator.evaluate`` from the chunks' statistics (C, width),
    in row order."""
    totals = np.zeros(len(SUMS) - 1)
    ll = code = kl_sums = None
    L, head = latent_dim, len(SUMS)
    for row in statistics:
        n = row[0]
        if n == 0:
            continue
        part_ll = (n, row[head], row[head + 1])
        part_code = (n, row[head + 2 : head + 2 + L], row[head + 2 + L : head + 2 + 2 * L])
        ll = part_ll if ll is None else merge_moments(ll, part_ll)
        code = part_code if code is None else merge_moments(code, part_code)
        kl_part = row[head + 2 + 2 * L :]
        kl_sums = kl_part.copy() if kl_sums is None else kl_sums + kl_part
        totals += row[1:head]
    count = ll[0]  # rows in all the chunks
    elbo, reconstruction, kl, ess, exact = totals / count
    n_rows, log_likelihood = int(count), float(ll[1])
    activity = code[2] / count  # the variance over the rows, as numpy's var (ddof 0)
    figures = {
        "elbo": float(elbo),
        "reconstruction": float(reconstruction),
        "kl": float(kl),
        "log_likelihood": log_likelihood,
        # One row has no spread to estimate: null in JSON rather than a NaN.
        "log_likelihood_std_error": float(math.sqrt(ll[2] / (count - 1) / count)) if n_rows > 1 else None,
        "bits_per_dim": float(bits_per_dim(log_likelihood, n_features)),
        "elbo_bits_per_dim": float(bits_per_dim(elbo, n_features)),
        "elbo_gap": float(log_likelihood - elbo),
        "active_units": int((activity > ACTIVE_UNIT_THRESHOLD).sum()),
        "latent_dim": latent_dim,
        "latent_activity": activity.tolist(),
        "kl_per_dimension": None if np.isnan(kl_sums).any() else (kl_sums / count).tolist(),
        "effective_sample_size": float(ess),
        "proposal": proposal,
        "k": k,
        "n_rows": n_rows,
        "n_features": n_features,
        "data": data,
        "exact_log_likelihood": None,
    }
    if not math.isnan(exact):
        figures["exact_log_likelihood"] = float(exact)
        figures["exact_bits_per_dim"] = float(bits_per_dim(exact, n_features))
    return figures
