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


# -- the contract, one property at a time ------------------------------------------------------

import pandas as pd  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import aevb  # noqa: E402
from aevb import AevbError  # noqa: E402


def low_rank(n=300, seed=0):
    """Rows of a 2-D linear-Gaussian model in 6 dimensions: W z + noise, with unequal column scales."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(6, 2)) * 3.0
    return rng.normal(size=(n, 2)) @ W.T + 0.3 * rng.normal(size=(n, 6)) + np.arange(6) * 10.0


def unfitted_models():
    return [VAE(**FAST), TabularVAE(**FAST), PPCA(latent_dim=2), FactorAnalysis(latent_dim=2)]


@pytest.mark.parametrize("model", unfitted_models(), ids=lambda m: type(m).__name__)
def test_every_method_raises_not_fitted_before_fit(model):
    X = low_rank(20)
    for call in (
        lambda: model.score(X), lambda: model.score_samples(X), lambda: model.transform(X),
        lambda: model.sample(2), lambda: model.get_feature_names_out(), lambda: model.evaluate(X, k=2),
    ):
        with pytest.raises(NotFittedError, match="not fitted") as caught:
            call()
        assert isinstance(caught.value, AevbError)


def test_fit_ignores_y_like_scikit_learn():
    X = low_rank(60)
    with_y = VAE(**FAST).fit(X, X[:, 0])
    without = VAE(**FAST).fit(X)
    assert with_y.score(X, X[:, 0], k=5) == without.score(X, k=5)


def test_a_failed_fit_leaves_the_estimator_unfitted(tmp_path):
    X = low_rank(60)
    model = VAE(**FAST).fit(X)
    # fails inside training, once the network is built: metrics.csv cannot be a folder
    with pytest.raises(OSError):
        model.fit(X, metrics_path=tmp_path)
    assert not hasattr(model, "model_") and not hasattr(model, "n_features_in_")
    with pytest.raises(NotFittedError):
        model.score(X)
    for estimator in (PPCA(latent_dim=2).fit(X), TabularVAE(**FAST).fit(X)):
        holes = X.copy()
        holes[0, 0] = np.inf
        with pytest.raises(AevbError):
            estimator.fit(holes)
        with pytest.raises(NotFittedError):
            estimator.sample(1)


def test_parameters_are_stored_as_given_and_checked_by_fit():
    model = VAE(latent_dim=0, hidden=[8])
    assert model.get_params()["hidden"] == [8] and model.latent_dim == 0
    with pytest.raises(AevbError, match="latent_dim must be a positive integer"):
        model.fit(low_rank(20))
    model.set_params(latent_dim=2, epochs=2)
    assert model.fit(low_rank(20)).model_.latent_dim == 2
    with pytest.raises(AevbError, match="unknown option"):
        VAE(latent_dims=2)


@pytest.mark.parametrize("model", unfitted_models(), ids=lambda m: type(m).__name__)
def test_clone_keeps_every_parameter(model):
    model.set_params(latent_dim=3)
    twin = clone(model)
    assert twin is not model and twin.get_params() == model.get_params()
    assert set(model.get_params()) == {f.name for f in __import__("dataclasses").fields(model.config_class)}


def test_feature_names_come_from_a_dataframe():
    frame = pd.DataFrame(low_rank(40), columns=list("abcdef"))
    model = PPCA(latent_dim=2).fit(frame)
    assert list(model.feature_names_in_) == list("abcdef") and model.n_features_in_ == 6
    assert list(model.get_feature_names_out()) == ["ppca0", "ppca1"]
    assert not hasattr(PPCA(latent_dim=2).fit(frame.to_numpy()), "feature_names_in_")
    with pytest.raises(AevbError, match="X has 5 features, but PPCA is expecting 6"):
        model.score_samples(frame.to_numpy()[:, :5])


def test_grid_search_selects_latent_dim_by_held_out_score():
    X = low_rank(300)
    cv = KFold(3, shuffle=True, random_state=0)
    search = GridSearchCV(PPCA(), {"latent_dim": np.arange(1, 5)}, cv=cv).fit(X)
    assert search.best_params_["latent_dim"] == 2  # the data's own dimension
    # each figure is the mean held-out log-likelihood, computed here by hand
    for latent_dim, mean in zip(range(1, 5), search.cv_results_["mean_test_score"]):
        by_hand = [PPCA(latent_dim=latent_dim).fit(X[a]).score(X[b]) for a, b in cv.split(X)]
        assert mean == pytest.approx(np.mean(by_hand), rel=1e-12)
    assert search.best_estimator_.n_features_in_ == 6
    vae = GridSearchCV(VAE(**FAST), {"latent_dim": [1, 2]}, cv=2).fit(X[:60])
    assert np.isfinite(vae.cv_results_["mean_test_score"]).all()


@pytest.mark.parametrize("model", unfitted_models(), ids=lambda m: type(m).__name__)
def test_pipeline_ending_in_any_estimator(model):
    X = low_rank(80)
    pipeline = make_pipeline(StandardScaler(), model).fit(X)
    scaled = StandardScaler().fit_transform(X)
    alone = clone(model).fit(scaled)
    assert pipeline.score(X) == pytest.approx(alone.score(scaled), rel=1e-9)
    np.testing.assert_allclose(pipeline.transform(X), alone.transform(scaled), rtol=1e-9)
    assert pipeline.fit_transform(X).shape == (80, 2)


def test_saved_models_load_with_their_parameters(tmp_path):
    X = low_rank(60)
    for model in (VAE(**FAST).fit(X), PPCA(latent_dim=2).fit(X), TabularVAE(**FAST).fit(pd.DataFrame(X))):
        again = aevb.load(model.save(tmp_path / type(model).__name__))
        assert again.get_params() == model.get_params()
        assert clone(again).get_params() == model.get_params()
        np.testing.assert_array_equal(again.score_samples(X), model.score_samples(X))
