"""Factor analysis on raw columns of very different scales converges to the same
optimum as on standardized ones (the model is scale-equivariant), in tens of iterations."""

import numpy as np
import pytest

from aevb import AevbWarning, FactorAnalysis

sklearn = pytest.importorskip("sklearn")
from sklearn.datasets import load_breast_cancer  # noqa: E402
from sklearn.decomposition import FactorAnalysis as SklearnFA  # noqa: E402


def test_raw_breast_cancer_matches_scikit_learn_held_out():
    X = load_breast_cancer().data  # 30 columns spanning 1e-3 .. 1e3
    order = np.random.default_rng(0).permutation(len(X))
    train, test = X[order[:400]], X[order[400:]]
    ours = FactorAnalysis(latent_dim=2).fit(train)
    assert ours.n_iter_ < 500  # in the user's units the same steps took ~10,000
    # scikit-learn's fit on standardized columns, mapped back by the Jacobian log|det D^-1|
    mean, scale = train.mean(0), train.std(0)
    theirs = SklearnFA(n_components=2, tol=1e-7, max_iter=10_000).fit((train - mean) / scale)
    expected = theirs.score((test - mean) / scale) - np.log(scale).sum()
    assert abs(ours.score(test) - expected) < 1e-3
    # and the raw fit is the standardized fit, mapped back: W -> D W, psi -> D^2 psi
    standardized = FactorAnalysis(latent_dim=2).fit((train - mean) / scale)
    np.testing.assert_allclose(ours.noise_variance_, scale**2 * standardized.noise_variance_, rtol=1e-6)


def test_a_constant_column_does_not_break_the_rescaling():
    X = np.random.default_rng(0).normal(size=(200, 4)) * [1e-3, 1, 1e3, 0]
    with pytest.warns(AevbWarning, match="constant column"):
        model = FactorAnalysis(latent_dim=1).fit(X)
    assert np.isfinite(model.components_).all() and np.isfinite(model.noise_variance_).all()
