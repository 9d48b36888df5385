"""scikit-learn's estimator contract: its own checks on every estimator, and the uses it enables."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from aevb import PPCA, VAE, FactorAnalysis, TabularVAE

FAST = dict(latent_dim=2, hidden=(8,), epochs=3, batch_size=16, max_time=5.0)
ESTIMATORS = [VAE(**FAST), TabularVAE(**FAST), PPCA(latent_dim=1), FactorAnalysis(latent_dim=1, max_iter=200)]

# Checks that cannot apply, with the reason, per estimator class.
MONTE_CARLO = (
    "score_samples is an importance-sampling estimate whose draws come from one seeded stream per "
    "call, so a row's estimate depends on the rows before it (PPCA and FA, exact, pass)"
)
EXPECTED_FAILURES: dict[str, dict[str, str]] = {
    name: {"check_methods_sample_order_invariance": MONTE_CARLO, "check_methods_subset_invariance": MONTE_CARLO}
    for name in ("VAE", "TabularVAE")
}
EXPECTED_FAILURES["PPCA"] = {
    "check_transformer_n_iter": "PPCA is solved in closed form, no iterations; max_iter and tol are "
    "factor analysis options of the shared LinearConfig",
}


def expected_failures(estimator) -> dict[str, str]:
    return EXPECTED_FAILURES.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failures)
def test_sklearn_check(estimator, check):
    check(estimator)
