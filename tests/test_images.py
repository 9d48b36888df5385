"""Images as images: discrete pixel likelihoods, conv networks, a top-down latent hierarchy.

The likelihoods are checked against the closed form every distribution must meet
(probabilities over all states sum to one), the hierarchy against the plain VAE it
reduces to and against the ordering ELBO <= IWAE_k <= IWAE_k' (k < k'). The nets are
tiny: conv nets on a CPU are slow.
"""

from __future__ import annotations

import csv
import itertools

import numpy as np
import pytest
import torch
from PIL import Image

import aevb
from aevb.core.objectives import elbo, iwae
from aevb.images.hierarchy import LadderVAE
from aevb.images.pixels import DiscretizedLogisticMixture, PixelCategorical, pixel_distribution
from aevb.vae.model import build_vae, resolved_net
from aevb.config import VAEConfig
from aevb.data.loaders import Dataset
from cli_helpers import call

LEVELS, PIXELS = 3, 4  # a 2x2 image with 3 levels: 81 states


def all_images(levels: int, pixels: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product(range(levels), repeat=pixels)), dtype=torch.float64)


def random_decoders(batch: int, levels: int, pixels: int):
    """Each discrete decoder with random outputs of batch shape (batch,), spread wide enough
    that some logistics are far narrower than a bin and some far wider than the range."""
    g = torch.Generator().manual_seed(1)
    logits = 3 * torch.randn(batch, pixels, levels, generator=g, dtype=torch.float64)
    m = 4
    mixture = DiscretizedLogisticMixture(
        torch.randn(batch, pixels, m, generator=g, dtype=torch.float64),
        2 * torch.rand(batch, pixels, m, generator=g, dtype=torch.float64) - 1.2,  # some below the lowest level
        torch.empty(batch, pixels, m, dtype=torch.float64).uniform_(-6, 3, generator=g),
        levels,
    )
    return [PixelCategorical(logits), mixture]


@pytest.mark.parametrize("which", ["categorical", "logistic-mixture"])
def test_probabilities_of_all_81_states_sum_to_one(which):
    decoder = random_decoders(5, LEVELS, PIXELS)[0 if which == "categorical" else 1]
    states = all_images(LEVELS, PIXELS).unsqueeze(1)  # (81, 1, 4), against batch (5,)
    log_p = decoder.log_prob(states)  # (81, 5)
    assert log_p.shape == (81, 5)
    torch.testing.assert_close(log_p.exp().sum(0), torch.ones(5, dtype=torch.float64), atol=1e-5, rtol=0)


def test_logistic_mixture_edge_bins_at_256_levels():
    """At 8 bits, the lowest and highest bins reach out to -inf and +inf: all 256 sum to one
    even for a logistic centred far outside [-1, 1]; and a logistic centred on an inner level
    gives it F(v + h) - F(v - h) = 2 sigmoid(h / s) - 1, h = 1/255."""
    levels = torch.arange(256, dtype=torch.float64).reshape(256, 1, 1)
    loc = torch.tensor([[-3.0], [3.0], [2 * 100 / 255 - 1]], dtype=torch.float64)  # (3 batches, 1 pixel)
    dist = DiscretizedLogisticMixture(torch.zeros(3, 1, 1, dtype=torch.float64), loc.unsqueeze(-1),
                                      torch.full((3, 1, 1), -6.0, dtype=torch.float64), 256)
    p = dist.log_prob(levels).exp()  # (256, 3)
    torch.testing.assert_close(p.sum(0), torch.ones(3, dtype=torch.float64), atol=1e-6, rtol=0)
    assert p[0, 0] > 0.999 and p[255, 1] > 0.999
    expected = 2 * torch.sigmoid(torch.tensor(1 / 255 * np.exp(6.0), dtype=torch.float64)) - 1
    torch.testing.assert_close(p[100, 2], expected)


@pytest.mark.parametrize("which", ["categorical", "logistic-mixture"])
def test_mean_and_samples_follow_the_probabilities(which):
    decoder = random_decoders(1, LEVELS, 2)[0 if which == "categorical" else 1]
    states = all_images(LEVELS, 1).reshape(LEVELS, 1, 1).expand(LEVELS, 1, 2)
    probs = decoder.pixel_log_prob(states).exp()[:, 0, :]  # (L, 2 pixels)
    levels = torch.arange(LEVELS, dtype=torch.float64)
    torch.testing.assert_close(decoder.mean[0], levels @ probs)
    draws = decoder.sample((20_000,))[:, 0, :]  # (n, 2)
    frequencies = torch.stack([(draws == k).double().mean(0) for k in range(LEVELS)])
    # 4 standard errors of a frequency of 20,000 draws is under 0.015.
    torch.testing.assert_close(frequencies, probs, atol=0.015, rtol=0)


def test_pixel_distribution_reads_network_outputs():
    params = torch.randn(2, PIXELS, 3 * 5, dtype=torch.float64)
    dist = pixel_distribution("logistic-mixture", params, LEVELS)
    assert dist.batch_shape == (2,) and dist.event_shape == (PIXELS,)
    assert (dist.loc.abs() <= 1).all()  # the means live on the levels' range


# -- the hierarchy ---------------------------------------------------------------------


def test_one_layer_hierarchy_is_the_plain_vae():
    """Given the plain VAE's encoder, decoder and N(0, I), one layer gives its ELBO exactly."""
    torch.manual_seed(0)
    plain = build_vae(VAEConfig(latent_dim=3, hidden=(12, 10)), 6, "gaussian").double()
    ladder = LadderVAE(plain.encoder[0], 10, plain.decoder, 3, 1).double()
    ladder.encoder.heads[0].load_state_dict(plain.encoder[1].state_dict())
    x = torch.randn(7, 6, dtype=torch.float64)
    torch.manual_seed(5)
    expected = elbo(plain, x, n_samples=3)
    torch.manual_seed(5)
    got = elbo(ladder, x, n_samples=3)
    torch.testing.assert_close(got.elbo, expected.elbo, rtol=0, atol=0)
    torch.testing.assert_close(got.kl_per_dimension, expected.kl_per_dimension, rtol=0, atol=1e-15)


def two_layer_model(likelihood="gaussian"):
    torch.manual_seed(0)
    config = VAEConfig(latent_dim=2, hidden=(16,), latent_layers=2, likelihood=likelihood, net="mlp")
    model = build_vae(config, 6, likelihood, n_levels=4).double()
    with torch.no_grad():  # a posterior far from the prior, so the bounds differ clearly
        for head in model.encoder.heads:
            head.linear.weight.mul_(3)
    return model


def test_elbo_below_iwae_and_iwae_tightens_with_k_for_two_layers():
    """E[ELBO] = E[IWAE_1] <= E[IWAE_10] <= E[IWAE_100], each mean over 64 rows and repeated
    draws; the tolerance on the first equality is 4 standard errors (fails about 1 in 15,000)."""
    model = two_layer_model()
    x = torch.randn(64, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(3)
    with torch.no_grad():
        elbos = torch.stack([elbo(model, x).elbo for _ in range(300)])
        iwae_1 = torch.stack([iwae(model, x, 1) for _ in range(300)])
        iwae_10, iwae_100 = (torch.stack([iwae(model, x, k) for _ in range(10)]).mean() for k in (10, 100))
    error = (elbos.var() / elbos.numel() + iwae_1.var() / iwae_1.numel()).sqrt()
    assert abs(elbos.mean() - iwae_1.mean()) < 4 * error
    assert elbos.mean() + 4 * error < iwae_10 < iwae_100


def test_hierarchy_draws_and_scores_in_every_layer():
    model = two_layer_model("categorical")
    x = torch.randint(0, 4, (5, 6)).double()
    q = model.posterior(x)
    z = q.rsample((3,))
    assert z.shape == (3, 5, 4)
    # log q(z|x) is the sum of the layers' conditionals: at the draws, finite and per row.
    assert q.log_prob(z).shape == (3, 5) and torch.isfinite(q.log_prob(z)).all()
    assert model.prior_distribution().expand((5,)).rsample((2,)).shape == (2, 5, 4)
    # The KL of a layer given the draws above it is >= 0, and 0 nowhere when q differs from p.
    assert (q.kl_per_dimension_given(z) > 0).all()
    # The decoder sees z_1 alone: changing the top layer does not change p(x|z).
    z2 = z.clone()
    z2[..., 2:] += 1
    torch.testing.assert_close(model.likelihood(z).log_prob(x), model.likelihood(z2).log_prob(x))


def test_free_bits_per_layer():
    from aevb.core.objectives import ElboTerms, free_bits_kl

    kl_dims = torch.tensor([[0.1, 0.2, 3.0, 0.0]])
    terms = ElboTerms(torch.zeros(1), torch.zeros(1), kl_dims.sum(-1), kl_dims, layer_sizes=(2, 2))
    # Layer 1 has KL 0.3 < 2 * 0.5 and costs 1.0; layer 2 has 3.0 > 1.0 and costs 3.0.
    torch.testing.assert_close(free_bits_kl(terms, 0.5, 4), torch.tensor([4.0]))


# -- the estimator: conv and MLP, RGB and grayscale ---------------------------------------------

TINY = dict(epochs=2, hidden=(8,), latent_dim=2, conv_width=4, batch_size=16, patience=5)


def images(channels: int, n: int = 24, side: int = 6, levels: int = 4) -> Dataset:
    shape = (side, side) if channels == 1 else (side, side, channels)
    rows = np.random.default_rng(channels).integers(0, levels, size=(n, int(np.prod(shape)))).astype(float)
    return Dataset(rows, shape)


@pytest.mark.parametrize(
    "channels,options",
    [
        (1, dict(net="conv", likelihood="categorical")),
        (3, dict(net="conv", likelihood="logistic-mixture", mixture_components=2, latent_layers=2)),
        (3, dict(net="mlp", likelihood="categorical", latent_layers=2)),
        (1, dict(net="conv", likelihood="gaussian")),
    ],
)
def test_save_load_resume_round_trip(tmp_path, channels, options):
    data = images(channels)
    straight = aevb.VAE(**TINY, **options).fit(data, run_dir=tmp_path / "straight")
    straight.save(tmp_path / "model")
    loaded = aevb.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.score_samples(data, k=3), straight.score_samples(data, k=3))
    assert loaded.sample(2).shape == (2, data.values.shape[1])
    # One epoch, then resumed to two: the same weights as two in one go.
    aevb.VAE(**{**TINY, "epochs": 1}, **options).fit(data, run_dir=tmp_path / "halves")
    resumed = aevb.VAE(**TINY, **options).fit(data, run_dir=tmp_path / "halves", resume=True)
    for name, value in straight.model_.state_dict().items():
        torch.testing.assert_close(resumed.model_.state_dict()[name], value, rtol=0, atol=0)
    figures = loaded.evaluate(data, k=3)
    if options.get("latent_layers", 1) > 1:
        assert [layer["latent_dim"] for layer in figures["layers"]] == [2, 2]
        assert sum(layer["kl"] for layer in figures["layers"]) == pytest.approx(figures["kl"])
    else:
        assert "layers" not in figures


@pytest.mark.parametrize("likelihood", ["categorical", "logistic-mixture"])
def test_discrete_score_is_a_bound_on_the_probability_of_the_levels(likelihood):
    """No dequantization and no Jacobian: the model sees the integers as they are, and its
    bound on log P(x) is at most 0 (a density's could be positive); the reconstruction
    term is log P(x|z) of the levels, between log P of the likeliest and least likely image."""
    data = images(1)
    model = aevb.VAE(**TINY, net="mlp", likelihood=likelihood, mixture_components=2).fit(data)
    pre = model.preprocessor_
    x = torch.as_tensor(data.values, dtype=torch.float32)
    assert pre.log_abs_det_jacobian() == 0.0 and torch.equal(pre.to_model(x), x)
    assert (model.score_samples(data, k=20) < 0).all()
    terms = model.elbo_samples(data)
    assert (terms["reconstruction"] < 0).all() and (terms["elbo"] <= terms["reconstruction"]).all()


def write_png(path, array):
    Image.fromarray(array.astype(np.uint8)).save(path)


def test_fit_a_folder_of_rgb_images_with_the_command(tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        write_png(folder / f"{i}.png", rng.integers(0, 256, size=(6, 5, 3)))
    args = ["--epochs", "1", "--hidden", "8", "--latent-dim", "2", "--conv-width", "4", "--quiet"]
    assert call(["fit", folder, "--out", tmp_path / "run", "--likelihood", "logistic-mixture", "--net", "conv", *args]) == 0
    assert type(aevb.load(tmp_path / "run").model_.encoder[0][1]).__name__ == "ConvEncoderBody"
    assert call(["sample", tmp_path / "run", "-n", "4", "--png", tmp_path / "s.png"]) == 0
    assert Image.open(tmp_path / "s.png").mode == "RGB"


@pytest.mark.parametrize(
    "setup,args,fragment",
    [
        ("mixed", [], "differ in size"),
        ("broken", [], "image"),
        ("floats", ["--likelihood", "categorical"], "whole numbers"),
        ("floats", ["--likelihood", "categorical", "--net", "conv"], "whole numbers"),
        ("floats", ["--net", "conv"], "needs images"),
        ("floats", ["--latent-layers", "2", "--prior", "vamp"], "latent_layers > 1"),
    ],
)
def test_bad_image_input_is_one_line(tmp_path, capsys, setup, args, fragment):
    source = tmp_path / "data"
    if setup == "floats":
        source = tmp_path / "rows.npy"
        np.save(source, np.random.default_rng(0).normal(size=(10, 4)))
    else:
        source.mkdir()
        write_png(source / "a.png", np.zeros((4, 4)))
        if setup == "mixed":
            write_png(source / "b.png", np.zeros((5, 4)))
        else:
            (source / "b.png").write_bytes(b"\x89PNG not really")
    assert call(["fit", source, "--out", tmp_path / "run", "--epochs", "1", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("aevb: error:") and err.count("\n") == 1 and fragment in err


def test_scoring_levels_the_model_never_saw_is_one_line(tmp_path, capsys):
    data = images(1)
    aevb.VAE(**TINY, net="mlp", likelihood="categorical").fit(data).save(tmp_path / "run")
    np.save(tmp_path / "odd.npy", np.full((2, 36), 9.0))
    assert call(["score", tmp_path / "run", tmp_path / "odd.npy", "--out", tmp_path / "s.csv"]) == 2
    assert "0..3" in capsys.readouterr().err


@pytest.mark.parametrize(
    "image_shape,net", [(None, "mlp"), ((8, 8), "mlp"), ((16, 16), "conv"), ((32, 20, 3), "conv"), ((15, 64), "mlp")]
)
def test_auto_net_is_conv_for_images_of_16_pixels_a_side(image_shape, net):
    assert resolved_net(VAEConfig(), image_shape) == net
    assert resolved_net(VAEConfig(net="mlp"), image_shape) == "mlp"


def test_conv_decoder_keeps_pixel_order_for_odd_sizes():
    """An encoder/decoder pair on a 7x5x3 image: outputs per pixel in the rows' own order (H, W, C)."""
    from aevb.images.nets import ConvDecoderBody, ConvEncoderBody

    encoder, decoder = ConvEncoderBody((7, 5, 3), 4, 6), ConvDecoderBody(2, (7, 5, 3), 4, 5)
    assert encoder(torch.zeros(2, 3, 105)).shape == (2, 3, 6)
    out = decoder(torch.zeros(4, 2))
    assert out.shape == (4, 105, 5)
    # The last conv's bias for channel c shows up at rows' positions j with j % 3 == c.
    last = decoder.convs[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.arange(15.0))  # channel-major: (C, P) -> c * 5 + p
    out = decoder(torch.zeros(1, 2))[0]  # (105, 5)
    channel = torch.arange(105) % 3
    torch.testing.assert_close(out[:, 0], channel * 5.0)


def test_image_commands_on_a_two_layer_conv_model(tmp_path, capsys):
    """fit on digits with conv nets and 2 layers; evaluate prints each layer; score writes
    a pixel map per image; reconstruct and sample write grids. An (N, 8, 8) array is images."""
    np.save(tmp_path / "few.npy", aevb.datasets.load("digits-test").values[:20].reshape(20, 8, 8))
    fit = ["fit", tmp_path / "few.npy", "--out", tmp_path / "run", "--epochs", "1", "--hidden", "8", "--latent-dim", "2",
           "--conv-width", "4", "--latent-layers", "2", "--likelihood", "categorical", "--quiet"]
    assert call(fit) == 0
    run = tmp_path / "run"
    assert call(["evaluate", run, tmp_path / "few.npy", "--k", "5"]) == 0
    out = capsys.readouterr().out
    assert "latent layer 1 (nearest x): KL" in out and "latent layer 2: KL" in out
    assert call(["score", run, tmp_path / "few.npy", "--out", tmp_path / "s.csv", "--k", "5",
                 "--pixel-map", tmp_path / "maps"]) == 0
    maps = sorted((tmp_path / "maps").iterdir())
    assert [m.name for m in maps] == [f"{i:06d}.png" for i in range(20)]
    assert call(["reconstruct", run, tmp_path / "few.npy", "--png", tmp_path / "r.png", "--out", tmp_path / "r.npy"]) == 0
    rebuilt = np.load(tmp_path / "r.npy")
    assert rebuilt.shape == (20, 64) and rebuilt.min() >= 0 and rebuilt.max() <= 16
    assert call(["sample", run, "-n", "4", "--png", tmp_path / "s.png"]) == 0


def test_pixel_map_is_log_p_of_each_pixel_under_the_weighted_posterior():
    """With k = 1 the weight is 1: the map is log P(x_j | z) at one draw z ~ q(z|x); summed over
    pixels it is that draw's reconstruction term, which the ELBO's of the same seed equals."""
    data = images(1)
    model = aevb.VAE(**TINY, net="mlp", likelihood="categorical").fit(data)
    per_pixel = model.pixel_log_likelihood(data, k=1, seed=4)
    assert per_pixel.shape == data.values.shape and (per_pixel <= 0).all()
    terms = model.elbo_samples(data, seed=4)
    np.testing.assert_allclose(per_pixel.sum(1), terms["reconstruction"], rtol=1e-5)


def test_metrics_have_a_kl_per_layer_that_sums_to_the_kl(tmp_path):
    data = images(1)
    aevb.VAE(**TINY, net="mlp", likelihood="categorical", latent_layers=3).fit(data, metrics_path=tmp_path / "m.csv")
    for row in csv.DictReader(open(tmp_path / "m.csv")):
        for part in ("train", "val"):
            layers = [float(row[f"{part}_kl_{l}"]) for l in (1, 2, 3)]
            assert sum(layers) == pytest.approx(float(row[f"{part}_kl"]), rel=1e-5)
