"""Columns whose offset dwarfs their spread keep their precision: raw rows are
standardized in float64 before the model's float32 sees them, and samples are
mapped back in float64.

Closed form: for D independent unit normals log p(x) = -D/2 log(2 pi e) on average,
and rescaling a column by s moves it by -log s. A VAE can approach, not beat, it.
"""

import numpy as np
import pytest
import torch

from aevb import VAE
from aevb.data.preprocess import Preprocessor

D = 6
TRUE_LOG_P = -D * 0.5 * np.log(2 * np.pi * np.e)  # -8.51 nats/row


def _table(offset: float, spread: float, n: int = 2000) -> np.ndarray:
    x = np.random.default_rng(0).standard_normal((n, D))
    x[:, 0] = offset + spread * x[:, 0]
    return x


@pytest.mark.parametrize("offset, spread", [(1e12, 1.0), (1e-12, 1e-20), (1.7e9, 1.0)])
def test_offset_columns_score_and_sample_at_their_precision(offset, spread):
    x = _table(offset, spread)
    model = VAE(latent_dim=2, hidden=(16,), epochs=5, seed=0).fit(x[:1500])
    exact = TRUE_LOG_P - np.log(spread)
    assert model.preprocessor_.row_dtype == torch.float64
    # float32 rows rounded the column onto a few values: +0.6 nats/row above the exact entropy
    assert exact - 0.3 < model.score(x[1500:]) < exact + 0.1
    shifted = x[1500:].copy()
    shifted[:, 0] += 20000 * spread  # 20,000 sigma away: impossible under the model
    assert model.score(shifted) < exact - 1000
    drawn = model.sample(2000, seed=0)[:, 0]
    assert 0.9 < drawn.std() / spread < 1.1  # float32 gave std 0 (every draw 1e12 - 4096)
    assert abs(drawn.mean() - offset) < 0.2 * spread


def test_memory_mapped_chunks_keep_float64(tmp_path):
    x = _table(1e12, 1.0)
    np.save(tmp_path / "x.npy", x[:1500])
    rows = np.load(tmp_path / "x.npy", mmap_mode="r")
    model = VAE(latent_dim=2, hidden=(16,), epochs=3, seed=0, in_memory_mib=0).fit(rows)
    assert TRUE_LOG_P - 0.5 < model.score(x[1500:]) < TRUE_LOG_P + 0.1


def test_to_model_is_exact_in_float64():
    x = _table(1e12, 1e-3)
    pre = Preprocessor.fit(x, "gaussian")
    y = pre.to_model(torch.as_tensor(x, dtype=pre.row_dtype)).float().double().numpy()
    expected = (x - x.mean(0)) / x.std(0)
    np.testing.assert_allclose(y, expected, atol=1e-5)
    back = pre.from_model(torch.as_tensor(expected, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(back[:, 0], x[:, 0], rtol=0, atol=1e-7)


def test_ordinary_data_stays_float32():
    pre = Preprocessor.fit(_table(0.0, 1.0), "gaussian")
    assert pre.row_dtype == torch.float32
