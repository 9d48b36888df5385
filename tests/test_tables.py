"""Tables: mixed column types, missing values, imputation, synthetic rows, per-row scores.

The data come from a known model (aevb.tables.examples.mixed_table): one latent
z ~ N(0, 1) drives two continuous columns, a three-way category, a yes/no column
and an integer count, so every column carries information about the others. The seeds are fixed (conftest and
numpy's default_rng(0)); the margins below held with room on every seed tried.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from cli_helpers import call
from torch import nn

from aevb import AevbError, TabularVAE, load
from aevb.config import TableConfig
from aevb.core.nets import mlp
from aevb.core.objectives import elbo, iwae
from aevb.core.priors import StandardNormalPrior
from aevb.tables.examples import imputation_errors, independent_log_likelihood, mixed_table, punch_holes
from aevb.tables.likelihood import TableEncoderInput, TableHead
from aevb.tables.schema import Column, TableSchema
from aevb.vae.model import LatentVariableModel

MISSING = 0.2


known_table = mixed_table


@pytest.fixture(scope="module")
def fitted():
    torch.manual_seed(0)
    train = punch_holes(known_table(1500, 0), MISSING, 1)
    model = TabularVAE(latent_dim=2, hidden=(64, 64), epochs=150, patience=15, batch_size=128,
                       learning_rate=3e-3, max_time=50).fit(train)
    return model, train


def test_schema_is_inferred_and_overridable():
    frame = known_table(50, 0).assign(id=np.arange(50), grade=np.arange(50) % 3, answer=["yes", "no"] * 25)
    kinds = {c.name: c.kind for c in TableSchema.infer(frame, ignore=["id"]).columns}
    assert kinds == {"height": "continuous", "weight": "continuous", "colour": "categorical", "member": "boolean",
                     "visits": "integer", "grade": "categorical", "answer": "boolean"}
    schema = TableSchema.infer(frame, categorical=["visits"], continuous=["grade"], ignore=["id", "weight"])
    kinds = {c.name: c.kind for c in schema.columns}
    assert kinds["visits"] == "categorical" and kinds["grade"] == "continuous" and "weight" not in kinds
    assert schema.ignored == ["weight", "id"]  # in the table's order
    with pytest.raises(AevbError, match="'nope'"):
        TableSchema.infer(frame, categorical=["nope"])


def test_likelihood_sums_the_observed_cells_only():
    schema = TableSchema([Column("x", "continuous", "float64", shift=5.0, scale=2.0),
                          Column("c", "categorical", "object", ["a", "b", "c"]), Column("b", "boolean", "bool")])
    head = TableHead(4, schema).double()
    h = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    dist = head(h)
    x = torch.tensor([[6.0, 2.0, 1.0], [float("nan"), 0.0, float("nan")], [4.0, float("nan"), 0.0]], dtype=torch.float64)
    per_column = dist.column_log_prob(x)
    for i in range(3):
        for j in range(3):
            if math.isnan(x[i, j]):
                assert per_column[i, j] == 0
            else:
                part = dist.parts[j]
                value = x[i, j].long() if j == 1 else x[i, j]
                assert torch.allclose(per_column[i, j], part.log_prob(value)[i])
    # The Gaussian is in the user's units: standardized parameters, scale 2 folded in.
    out = head.linear(h)
    in_user_units = torch.distributions.Normal(5.0 + 2.0 * out[:, 0], 2.0 * out[:, 1].clamp(math.log(1e-4), math.log(1e4)).exp())
    assert torch.allclose(per_column[[0, 2], 0], in_user_units.log_prob(x[:, 0].nan_to_num())[[0, 2]])
    assert torch.allclose(dist.parts[0].mean, in_user_units.mean)
    dist.log_prob(x).sum().backward()
    assert torch.isfinite(h.grad).all()


def linear_gaussian_table_model(W: torch.Tensor, b: torch.Tensor, psi: torch.Tensor) -> LatentVariableModel:
    """z ~ N(0, I), x | z ~ N(Wz + b, diag psi) as a table model (linear decoder head), any encoder."""
    n, d = W.shape
    schema = TableSchema([Column(f"x{j}", "continuous", "float64") for j in range(n)])
    config = TableConfig(latent_dim=d, hidden=(16,))
    from aevb.vae.model import POSTERIOR_HEADS

    reader = TableEncoderInput(schema)
    encoder = nn.Sequential(reader, mlp(reader.out_features, (16,)), POSTERIOR_HEADS["diagonal"](16, config))
    head = TableHead(d, schema)
    with torch.no_grad():
        weight = torch.zeros(2 * n, d)
        weight[0::2] = W.float()
        head.linear.weight.copy_(weight)
        bias = torch.zeros(2 * n)
        bias[0::2], bias[1::2] = b.float(), 0.5 * psi.float().log()
        head.linear.bias.copy_(bias)
    return LatentVariableModel(encoder, nn.Sequential(mlp(d, ()), head), StandardNormalPrior(d)).double()


def test_observed_only_elbo_is_a_bound_on_the_exact_marginal_of_the_observed_cells():
    """For a linear-Gaussian table, log p(x_obs) = log N(x_obs; b_o, (W W^T + Psi)_oo) in closed form:
    the masked ELBO lies below it for every row (averaged over many draws) and the IWAE bound
    closes the gap; had the holes leaked into the likelihood, neither would match."""
    generator = torch.Generator().manual_seed(0)
    W = torch.randn(4, 2, generator=generator, dtype=torch.float64)
    b = torch.randn(4, generator=generator, dtype=torch.float64)
    psi = torch.tensor([0.3, 0.5, 0.2, 0.4], dtype=torch.float64)
    model = linear_gaussian_table_model(W, b, psi)
    z = torch.randn(6, 2, generator=generator, dtype=torch.float64)
    x = z @ W.T + b + psi.sqrt() * torch.randn(6, 4, generator=generator, dtype=torch.float64)
    x[0, 1] = x[1, [0, 3]] = x[2, 2] = x[4, [0, 1, 2]] = float("nan")
    exact = []
    covariance = W @ W.T + torch.diag(psi)
    for row in x:
        seen = ~torch.isnan(row)
        normal = torch.distributions.MultivariateNormal(b[seen], covariance[seen][:, seen])
        exact.append(normal.log_prob(row[seen]))
    exact = torch.stack(exact)
    with torch.no_grad():
        elbo_mean = torch.stack([elbo(model, x, n_samples=200).elbo for _ in range(10)]).mean(0)
        estimate = iwae(model, x, k=20000)
    assert (elbo_mean <= exact + 0.01).all(), (elbo_mean, exact)
    assert (elbo_mean < exact - 0.05).any()  # an untrained encoder is not the posterior
    assert torch.allclose(estimate, exact, atol=0.05), (estimate, exact)


def test_held_out_log_likelihood_beats_independent_columns(fitted):
    """The columns share z, so modelling them jointly must gain at least 1 nat per row
    (the generating model's gain is about 2.5) over independent per-column fits."""
    model, train = fitted
    test = punch_holes(known_table(600, 10), MISSING, 11)
    vae = model.score_samples(test, k=200)
    independent = independent_log_likelihood(train, test, model.schema_)
    assert vae.mean() > independent.mean() + 1.0, (vae.mean(), independent.mean())


def test_imputation_beats_column_mean_and_mode(fitted):
    model, _ = fitted
    truth = known_table(600, 20)
    holey = punch_holes(truth, MISSING, 21)
    filled = model.impute(holey, k=100)
    observed = holey.notna()
    for name in holey.columns:
        kept = observed[name].to_numpy()
        assert (filled[name][kept].astype(truth[name].dtype).to_numpy() == truth[name][kept].to_numpy()).all()
    errors = imputation_errors(truth, holey, filled, model.schema_)
    for name in ("height", "weight"):
        assert errors[name] < 0.7 * errors[f"{name} baseline"], errors
    for name in ("colour", "member"):
        assert errors[name] > errors[f"{name} baseline"] + 0.15, errors
    draws = model.impute(holey.head(50), k=50, multiple=3, seed=1)
    assert len(draws) == 3 and not draws[0].isna().any().any()
    differs = ~draws[0]["height"].astype(float).eq(draws[1]["height"].astype(float))
    assert differs.to_numpy()[~observed["height"].head(50).to_numpy()].all()


def test_synthetic_rows_and_round_trip_keep_names_dtypes_and_labels(fitted, tmp_path):
    model, _ = fitted
    clean = known_table(20, 3)
    model.save(tmp_path / "m")
    again = load(tmp_path / "m")
    assert again.schema_.to_dict() == model.schema_.to_dict()
    rows = again.sample(300, seed=0)
    assert list(rows.columns) == list(clean.columns)
    assert dict(rows.dtypes.astype(str)) == {"height": "float64", "weight": "float64", "colour": "object",
                                              "member": "bool", "visits": "int64"}
    assert set(rows["colour"]) <= {"red", "green", "blue"} and len(set(rows["colour"])) == 3
    assert np.allclose(again.score_samples(clean, k=20), model.score_samples(clean, k=20))
    # The synthetic rows carry the dependence: colour follows height as in the data.
    assert rows.groupby("colour")["height"].mean()["red"] > rows.groupby("colour")["height"].mean()["blue"] + 5


def test_the_lowest_column_score_names_the_unusual_cell(fitted):
    model, _ = fitted
    rows = known_table(5, 30)
    for column in ("weight", "height"):  # correlated: the score must not blame the other one
        odd = rows.copy()
        odd.loc[2, column] = odd.loc[2, column] + 60  # twenty standard deviations off
        scores = model.row_scores(odd, k=50)
        per_column = {c: scores[f"{c}_log_likelihood"][2] for c in odd.columns}
        assert min(per_column, key=per_column.get) == column, per_column
        assert scores["log_likelihood"][2] < model.row_scores(rows, k=50)["log_likelihood"][2] - 20


def test_csv_and_parquet_give_identical_models(tmp_path):
    frame = punch_holes(known_table(120, 5), MISSING, 6)
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    options = dict(latent_dim=2, hidden=(8,), epochs=3)
    from_csv = TabularVAE(**options).fit(str(tmp_path / "t.csv"))
    from_parquet = TabularVAE(**options).fit(str(tmp_path / "t.parquet"))
    assert from_csv.schema_.to_dict() == from_parquet.schema_.to_dict()
    for (name, a), (_, b) in zip(from_csv.model_.state_dict().items(), from_parquet.model_.state_dict().items()):
        assert torch.equal(a, b), name


@pytest.fixture(scope="module")
def cli_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    frame = punch_holes(known_table(150, 7), MISSING, 8).assign(id=np.arange(150))
    frame.to_csv(folder / "t.csv", index=False)
    assert call(["fit", folder / "t.csv", "--out", folder / "m", "--ignore", "id", "--epochs", 3,
                 "--hidden", 8, "--latent-dim", 2, "--quiet"]) == 0
    return folder, frame


def test_cli_fit_sample_impute_score(cli_model, capsys):
    folder, frame = cli_model
    assert call(["sample", folder / "m", "-n", 30, "--out", folder / "s.csv"]) == 0
    synthetic = pd.read_csv(folder / "s.csv")
    assert list(synthetic.columns) == ["height", "weight", "colour", "member", "visits"]
    assert set(synthetic["colour"]) <= {"red", "green", "blue"}
    assert call(["impute", folder / "m", folder / "t.csv", "--out", folder / "f.csv"]) == 0
    filled = pd.read_csv(folder / "f.csv")
    assert list(filled.columns) == list(frame.columns) and not filled.isna().any().any()
    assert (filled["id"] == frame["id"]).all()
    assert call(["impute", folder / "m", folder / "t.csv", "--out", folder / "f2.csv", "--multiple", 2]) == 0
    assert len(pd.read_csv(folder / "f2.csv")) == 2 * len(frame)
    assert call(["score", folder / "m", folder / "t.csv", "--out", folder / "sc.csv", "--k", 5]) == 0
    scores = pd.read_csv(folder / "sc.csv")
    assert {"log_likelihood", "n_observed", "height_log_likelihood", "colour_log_likelihood"} <= set(scores.columns)
    assert scores["height_log_likelihood"].isna().to_numpy().tolist() == frame["height"].isna().tolist()


@pytest.mark.parametrize(
    "change, fragments",
    [
        (lambda f: f.assign(colour=["purple"] + list(f["colour"][1:])), ["colour", "purple"]),
        (lambda f: f.assign(extra=1.0), ["extra"]),
        (lambda f: f.drop(columns="weight"), ["weight", "missing"]),
        (lambda f: f.assign(height=["tall"] + list(f["height"][1:])), ["height", "tall"]),
    ],
    ids=["unknown-category", "new-column", "missing-column", "type-clash"],
)
def test_score_time_mismatches_name_the_column(cli_model, capsys, change, fragments):
    folder, frame = cli_model
    change(frame).to_csv(folder / "bad.csv", index=False)
    capsys.readouterr()
    assert call(["score", folder / "m", folder / "bad.csv", "--out", folder / "x.csv", "--k", 2]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("aevb: error: ") and len(err.splitlines()) == 1
    for fragment in fragments:
        assert fragment in err, err


def test_mixture_column_density_integrates_to_one_in_the_users_units():
    schema = TableSchema([Column("x", "continuous", "float64", shift=100.0, scale=20.0)])
    head = TableHead(3, schema, components=3).double()
    dist = head(torch.randn(2, 3, dtype=torch.float64))
    grid = torch.linspace(-400, 600, 200001, dtype=torch.float64)
    density = dist.parts[0].log_prob(grid.unsqueeze(-1)).exp()  # (G, 2)
    mass = torch.trapezoid(density, grid, dim=0)
    assert torch.allclose(mass, torch.ones(2, dtype=torch.float64), atol=1e-6), mass


@pytest.mark.parametrize(
    "text, table",
    [
        ("a,b\n1,2\n3,4\n", False),             # numbers only: the array path, as before
        ("a,b\n1,2\n3,\n", True),               # a hole
        ("a,b\n1,red\n3,blue\n", True),         # a column of words
        ("a,b\n1,True\n3,False\n", True),       # yes/no
        ("a,b\n1,7\n3,blue\n", False),          # numbers mixed with a word: the array path's error
        ("a,b,c\n1,2,3\n3,\n", False),          # ragged: the array path's error
    ],
)
def test_which_csv_takes_the_table_path(tmp_path, text, table):
    from aevb.tables.io import is_table_file

    path = tmp_path / "t.csv"
    path.write_text(text)
    assert is_table_file(path) is table


def test_linear_models_refuse_tables(cli_model, capsys):
    folder, _ = cli_model
    capsys.readouterr()
    assert call(["fit", folder / "t.csv", "--out", folder / "p", "--model", "ppca"]) == 2
    assert "tables are modelled by the vae" in capsys.readouterr().err


def test_yes_no_words_come_back_in_the_tables_spelling():
    frame = pd.DataFrame({"x": np.arange(40.0) / 7, "answer": ["Yes", "No"] * 20})
    frame.loc[[3, 8], "answer"] = None
    model = TabularVAE(latent_dim=2, hidden=(8,), epochs=2).fit(frame)
    assert model.schema_.columns[1].kind == "boolean"
    assert set(model.sample(50, seed=0)["answer"]) <= {"Yes", "No"}
    filled = model.impute(frame)
    assert set(filled["answer"]) <= {"Yes", "No"} and (filled["answer"][frame["answer"].notna()] == frame["answer"].dropna()).all()


def test_a_table_run_resumes_to_the_weights_of_an_uninterrupted_run(cli_model, tmp_path):
    folder, _ = cli_model
    fit = ["fit", folder / "t.csv", "--ignore", "id", "--hidden", 8, "--latent-dim", 2, "--patience", 50, "--quiet"]
    assert call([*fit, "--out", tmp_path / "straight", "--epochs", 4]) == 0
    assert call([*fit, "--out", tmp_path / "resumed", "--epochs", 2]) == 0
    assert call(["fit", folder / "t.csv", "--resume", tmp_path / "resumed", "--epochs", 4, "--quiet"]) == 0
    straight, resumed = load(tmp_path / "straight"), load(tmp_path / "resumed")
    assert resumed.schema_.ignored == ["id"]
    for (name, a), (_, b) in zip(straight.model_.state_dict().items(), resumed.model_.state_dict().items()):
        assert torch.equal(a, b), name


FIXTURE = __import__("pathlib").Path(__file__).parent / "fixtures" / "table_model"


def test_a_table_model_saved_by_the_previous_layout_still_loads_and_scores_the_same():
    """tests/fixtures/table_model/model was written by the code before column kinds became classes
    (format_version 1, no per-column offset): it loads, and scores its rows as it did then."""
    import json

    model = load(FIXTURE / "model")
    rows = pd.read_csv(FIXTURE / "rows.csv")
    expected = json.loads((FIXTURE / "expected.json").read_text())
    np.testing.assert_allclose(model.score_samples(rows, k=50, seed=0), expected["score_samples_k50_seed0"], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(model.elbo_samples(rows, seed=0)["elbo"], expected["elbo_seed0"], rtol=1e-5, atol=1e-4)
    assert list(model.sample(5, seed=0).columns) == list(rows.columns)
    assert model.impute(rows, k=10).notna().all().all()


# -- what a newcomer and a hostile user ran into -----------------------------------------------

TINY = dict(latent_dim=2, hidden=(16,), epochs=40, patience=40, batch_size=64, learning_rate=1e-2, seed=0)


def test_large_offsets_and_tiny_spreads_keep_their_digits():
    """Columns 1e12 + N(0, 1) and 1e-12 + 1e-20 N(0, 1) (and one N(0, 1)): centred in float64
    before the model's float32. No model can beat the entropy of Gaussian data on average, so
    the mean score stays below -sum_j 0.5 log(2 pi e sigma_j^2) (plus sampling slack); in float32
    1e12 + N(0, 1) is a grid of 65,536 and scored far above it. A 20-sigma shift of a cell must
    cost, and draws keep a unit spread around 1e12."""
    rng = np.random.default_rng(0)
    n = 600
    frame = pd.DataFrame({"big": 1e12 + rng.normal(size=n), "tiny": 1e-12 + 1e-20 * rng.normal(size=n),
                          "unit": rng.normal(size=n)})
    model = TabularVAE(**TINY).fit(frame.iloc[:400])
    test = frame.iloc[400:].reset_index(drop=True)
    best = -(3 * 0.5 * np.log(2 * np.pi * np.e) + np.log(1e-20))  # minus the entropy: about +41.8
    scores = model.score_samples(test, k=50)
    assert scores.mean() < best + 0.3, (scores.mean(), best)
    assert scores.mean() > best - 1.5, (scores.mean(), best)  # and it did learn the columns
    shifted = test.assign(big=test["big"] + 20.0)
    assert model.score_samples(shifted, k=50).mean() < scores.mean() - 50
    draws = model.sample(500, seed=0)
    assert 0.5 < (draws["big"] - 1e12).std() < 2.0 and abs((draws["big"] - 1e12).mean()) < 0.5
    assert 0.5e-20 < (draws["tiny"] - 1e-12).std() < 2e-20


@pytest.mark.parametrize("bad", [np.inf, -np.inf, 1e308])
def test_a_table_refuses_non_finite_or_huge_cells_naming_column_and_row(bad):
    frame = known_table(40, 0)
    frame.loc[7, "weight"] = bad
    with pytest.raises(AevbError, match=r"column 'weight' holds .* at row 7") as error:
        TabularVAE(**TINY).fit(frame)
    assert "\n" not in str(error.value)
    model = TabularVAE(**{**TINY, "epochs": 1}).fit(known_table(40, 0))
    with pytest.raises(AevbError, match=r"column 'weight' holds .* at row 7"):
        model.score_samples(frame)


def test_integers_past_2_to_the_53_keep_every_digit(tmp_path):
    """A column with a hole is read as nullable integers: an ignored id comes back byte for byte,
    200 values near 2^62 stay 200 categories, an integer column near 2^62 is modelled on the
    exact differences from its offset and its draws are integers near 2^62."""
    n = 200
    base = 2**62
    ids = [str(9007199254740993 + i) for i in range(n)]
    big = [str(base + i) for i in range(n)]
    big[5] = ""
    ids[3] = ""
    x = np.random.default_rng(0).normal(size=n)
    lines = ["id,big,x"] + [f"{i},{b},{v!r}" for i, b, v in zip(ids, big, x)]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    model = TabularVAE(**{**TINY, "epochs": 3}, ignore=("id",)).fit(str(tmp_path / "t.csv"))
    column = model.schema_.columns[0]
    assert column.kind == "integer" and column.offset == base + 100
    filled = model.impute(str(tmp_path / "t.csv"), k=10)
    from aevb.tables.io import write_table

    write_table(filled, tmp_path / "f.csv")
    written = (tmp_path / "f.csv").read_text().splitlines()
    for i, (line, original) in enumerate(zip(written[1:], lines[1:])):
        got, want = line.split(","), original.split(",")
        assert got[0] == want[0], (i, got, want)  # the ignored id, hole included
        if want[1]:
            assert got[1] == want[1], (i, got, want)
    assert base - 1000 < int(written[6].split(",")[1]) < base + 1200  # the filled hole
    draws = model.sample(100, seed=0)["big"]
    assert draws.dtype == "int64" and (draws > base - 1000).all() and (draws < base + 1200).all()
    assert len(set(draws)) > 20  # not collapsed onto float64's grid of 1024
    categories = TabularVAE(categorical=("big",), ignore=("id",)).infer_schema(str(tmp_path / "t.csv"))
    assert len(categories.columns[0].categories) == n - 1


def test_numbers_near_2_to_the_70_are_modelled_without_overflow():
    values = (2.0**70) * (1 + np.random.default_rng(0).random(60))
    frame = pd.DataFrame({"huge": np.round(values), "x": np.arange(60.0) / 3})
    frame.loc[4, "huge"] = np.nan
    model = TabularVAE(**{**TINY, "epochs": 2}).fit(frame)
    assert model.schema_.columns[0].kind in ("continuous", "positive")
    assert np.isfinite(model.sample(20, seed=0)["huge"].astype(float)).all()
    assert np.isfinite(model.impute(frame, k=5)["huge"].astype(float)).all()


def test_identifiers_are_left_out_with_a_note_and_dates_are_numbers():
    n = 60
    rng = np.random.default_rng(0)
    days = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D")
    frame = known_table(n, 0).assign(
        customer=[f"c{i:04d}" for i in rng.permutation(n)], row=np.arange(n) + 1, day=days.strftime("%Y-%m-%d"))
    frame.loc[3, "day"] = None
    schema = TableSchema.infer(frame)
    kinds = {c.name: c.kind for c in schema.columns}
    assert "customer" not in kinds and "row" not in kinds and kinds["day"] == "date"
    assert set(schema.ignored) == {"customer", "row"}
    assert "note: column 'customer' is left out" in schema.summary()
    model = TabularVAE(**{**TINY, "epochs": 3}).fit(frame)
    drawn = pd.to_datetime(model.sample(50, seed=0)["day"], format="%Y-%m-%d")  # raises if not a date
    assert drawn.notna().all() and (drawn >= days.min() - pd.Timedelta(days=60)).all()
    assert (drawn <= days.max() + pd.Timedelta(days=60)).all() and drawn.nunique() > 5
    filled = model.impute(frame, k=5)
    assert filled.loc[3, "day"] is not None and filled["customer"].equals(frame["customer"])
    # A measurement that happens to differ in every row is not an identifier.
    assert {c.name for c in TableSchema.infer(frame.assign(weight=frame["weight"].round(6))).columns} >= {"weight"}


def test_a_tabular_vae_fits_an_array_and_a_nan_in_a_npy_points_to_tables(tmp_path):
    X = np.random.default_rng(0).normal(size=(50, 3))
    X[4, 1] = np.nan
    model = TabularVAE(**{**TINY, "epochs": 2}).fit(X)
    assert list(model.sample(3).columns) == ["0", "1", "2"]
    with pytest.raises(AevbError, match="2D array"):
        TabularVAE().fit(np.zeros(5))
    from aevb.data import loaders

    np.save(tmp_path / "x.npy", X)
    with pytest.raises(AevbError, match="TabularVAE"):
        loaders.load(str(tmp_path / "x.npy"))


def test_synthetic_positive_columns_stay_positive_wide_and_at_the_datas_precision():
    """A right-skewed, always-positive column written with two decimals (like breast_cancer's
    areas), driven by a latent shared with a second column: draws and imputed cells are positive,
    have at most two decimals, and their spread is near the data's (a Gaussian in x gives
    negative cells, float32 noise digits and a spread far too narrow)."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=500)
    frame = pd.DataFrame({"area": np.round(np.exp(3 + 0.8 * z + 0.3 * rng.normal(size=500)), 2),
                          "radius": np.round(10 + 2 * z + 0.5 * rng.normal(size=500), 3)})
    model = TabularVAE(**{**TINY, "epochs": 50}).fit(frame)
    assert model.schema_.columns[0].kind == "positive" and model.schema_.columns[0].decimals == 2
    draws = model.sample(3000, seed=0)
    assert (draws["area"] > 0).all()
    assert np.allclose(draws["area"], draws["area"].round(2), rtol=0, atol=1e-9)
    assert np.allclose(draws["radius"], draws["radius"].round(3), rtol=0, atol=1e-9)
    ratio = draws["area"].std() / frame["area"].std()
    assert 0.75 < ratio < 1.35, ratio
    holey = frame.copy()
    holey.loc[:30, "area"] = np.nan
    filled = model.impute(holey, k=20)["area"][:31]
    assert (filled > 0).all() and np.allclose(filled, filled.round(2), rtol=0, atol=1e-9)


def test_bounds_keep_draws_inside_the_observed_range():
    frame = pd.DataFrame({"x": np.random.default_rng(0).normal(5, 1, 300), "y": np.random.default_rng(1).normal(size=300)})
    model = TabularVAE(**{**TINY, "epochs": 2}, bounds="range").fit(frame)
    draws = model.sample(2000, seed=0)
    for name in ("x", "y"):
        assert draws[name].min() >= frame[name].min() and draws[name].max() <= frame[name].max()
    with pytest.raises(AevbError, match="bounds"):
        TabularVAE(bounds="clip").fit(frame)


def test_aggregate_posterior_moments_match_the_mixture_of_posteriors():
    """q(z) = (1/N) sum_n N(mu_n, diag s_n^2): mean = mean of mu_n, covariance = Cov(mu_n) + mean diag s_n^2."""
    from aevb.tables.preprocess import aggregate_posterior_moments

    generator = torch.Generator().manual_seed(0)
    mu = torch.randn(50, 2, generator=generator, dtype=torch.float64) @ torch.tensor([[1.5, 0.0], [0.7, 0.3]], dtype=torch.float64)
    s = 0.2 + torch.rand(50, 2, generator=generator, dtype=torch.float64)
    z = mu + s * torch.randn(4000, 50, 2, generator=generator, dtype=torch.float64)
    moments = aggregate_posterior_moments(z)
    exact = torch.cov(mu.T, correction=0) + torch.diag((s**2).mean(0))
    assert torch.allclose(torch.tensor(moments["mean"], dtype=torch.float64), mu.mean(0), atol=0.01)
    assert torch.allclose(torch.tensor(moments["covariance"], dtype=torch.float64), exact, atol=0.02)


def test_synthetic_rows_follow_the_codes_of_the_training_rows_not_the_prior(fitted, tmp_path):
    """A model whose training codes are wider than N(0, I) draws z from their moments (kept on save);
    ``from_prior=True`` and a model saved without them draw from the prior."""
    model, _ = fitted
    latent = model.preprocessor_.latent_distribution()
    assert latent is not None and latent.mean.shape == (2,)
    model.save(tmp_path / "m")
    again = load(tmp_path / "m")
    assert torch.equal(again.preprocessor_.latent_distribution().covariance_matrix, latent.covariance_matrix)
    assert again.sample(5, seed=3).equals(model.sample(5, seed=3))
    from_prior = model.sample(5, seed=3, from_prior=True)
    assert not from_prior.equals(model.sample(5, seed=3))
    legacy = load(FIXTURE / "model")
    assert legacy.preprocessor_.latent is None
    assert legacy.sample(5, seed=3).equals(legacy.sample(5, seed=3, from_prior=True))


def test_any_small_csv_table_is_modelled_or_refused_in_one_line(tmp_path):
    """Random cells (huge and tiny numbers, integers past 2^63, inf, words, holes, dates): reading,
    inference, encoding and decoding either work, with finite model values and a decoded table of
    the same shape, or stop with a one-line AevbError; never an OverflowError or a traceback."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from aevb.tables.io import read_table

    cells = st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.integers(-(10**30), 10**30).map(str),
        st.integers(2**62, 2**62 + 3).map(str),
        st.sampled_from(["", "1e300", "-1e309", "inf", "2024-02-30", "2024-01-05", "yes", "no", "a", "0.10"]),
    )

    @settings(max_examples=60, deadline=None, database=None)
    @given(rows=st.lists(st.lists(cells, min_size=2, max_size=2), min_size=2, max_size=8))
    def check(rows):
        path = tmp_path / "t.csv"
        path.write_text("a,b\n" + "\n".join(",".join(row) for row in rows) + "\n")
        try:
            frame = read_table(path)
            schema = TableSchema.infer(frame)
            encoded = schema.encode(frame)
        except AevbError as error:
            assert "\n" not in str(error)
            return
        assert not np.isinf(encoded).any() and (np.abs(np.nan_to_num(encoded)) <= 1e30).all()
        decoded = schema.decode(encoded)
        assert decoded.shape == (len(frame), len(schema.columns))

    check()
