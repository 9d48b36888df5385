"""The ``aevb`` command: fit, sample, encode, score, evaluate.

Each command parses its options, calls the library and writes files; the
options of ``fit`` are generated from :class:`aevb.config.VAEConfig`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
import time
import typing
import warnings
from pathlib import Path

import click
import numpy as np
import torch

from .config import POSITIVE_INT
from .core import progress
from .core.noise import MAX_SEED
from .data.images import save_grid
from .data.loaders import row_names
from .diffusion.estimator import format_evaluation as format_diffusion_evaluation
from .errors import AevbError, AevbWarning, TrainingInterrupted, TrainingStopped
from .estimator import EVAL_ROWS, Proposal
from .quality.assess import assess, format_quality, model_frames
from .registry import ESTIMATORS, OPTION_CLASSES, estimator_for
from .report.page import build as build_report
from .scale import distributed, streaming
from .store.atomic import replace_atomically
from .store.load import load
from .store.run_folder import LOCK_FILE, locked
from .tables.io import write_table
from .train import checkpoint
from .vae.memory import check_request

EXIT_USAGE = 2


def _parse_hidden(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers like 256,256, got {text!r}") from None


def _parse_names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def config_options(command):
    """Add one --option per field of the option dataclasses; unset options keep their defaults.
    A field that several classes declare is one option, with the first class's type and help;
    a choice (``Literal``) takes every class's choices, and a class that adds choices adds its
    help (each class checks its own choices when it is built)."""
    declared: dict[str, list] = {}
    for options_class in OPTION_CLASSES:
        hints = typing.get_type_hints(options_class)
        for field in dataclasses.fields(options_class):
            kind = hints[field.name]
            if type(None) in typing.get_args(kind):  # X | None: unset unless given
                kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
            declared.setdefault(field.name, []).append((field, kind))
    for name, [(field, kind), *later] in declared.items():
        helps = [field.metadata["help"]]
        if typing.get_origin(kind) is typing.Literal:
            choices = list(typing.get_args(kind))
            for other, other_kind in later:
                added = [c for c in typing.get_args(other_kind) if c not in choices]
                choices += added
                helps += [other.metadata["help"]] if added else []
            click_type = click.Choice(choices)
        elif typing.get_origin(kind) is tuple:
            click_type = str
        elif int in typing.get_args(kind) or kind is int:
            click_type = int
        else:
            click_type = float
        default = ",".join(map(str, field.default)) if isinstance(field.default, tuple) else field.default
        check = field.metadata.get("check")
        text = f"{' '.join(helps)} [default: {default}{'; ' + check.wanted if check else ''}]"
        command = click.option("--" + name.replace("_", "-"), name, type=click_type, default=None, help=text)(command)
    return command


def _options_for(estimator_class, options: dict, what: str) -> dict:
    """The options the user set, checked against what ``estimator_class`` takes (``what`` names it)."""
    chosen = {name: value for name, value in options.items() if value is not None}
    if "hidden" in chosen:
        chosen["hidden"] = _parse_hidden(chosen["hidden"])
    for name in set(chosen) & {"categorical", "continuous", "boolean", "ignore"}:
        chosen[name] = _parse_names(chosen[name])
    known = {field.name for field in dataclasses.fields(estimator_class.config_class)}
    foreign = sorted(set(chosen) - known)
    if foreign:
        flags = ", ".join("--" + name.replace("_", "-") for name in foreign)
        raise AevbError(f"{flags} does not apply to {what}")
    return chosen


def _write_rows(rows, path: Path, model) -> None:
    """Write rows in the user's units: a DataFrame (.csv/.parquet), or an array (.npy, or .csv
    with the training data's header and whole-number columns: :func:`streaming.write_model_rows`)."""
    if hasattr(rows, "to_csv"):
        write_table(rows, path)
        return
    streaming.write_model_rows(model, iter([rows]), path, len(rows))


def _quiet(quiet: bool) -> None:
    """No progress bars for the rest of this command with --quiet (else where one can be seen)."""
    click.get_current_context().with_resource(progress.showing(False if quiet else None))


def _positive(ctx, param, value):
    if value is not None:
        try:
            POSITIVE_INT.check(param.opts[0], value)
        except AevbError as error:
            raise click.BadParameter(str(error).split(" ", 1)[1]) from None
    return value


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="aevb")
def cli():
    """Learn the distribution p(x) of a dataset with a variational autoencoder."""


@cli.command()
@click.argument("source")
@click.option("--out", "out", type=click.Path(path_type=Path), default=None, help="Run folder for the model, metrics.csv and checkpoints.")
@click.option(
    "--resume",
    type=click.Path(path_type=Path),
    default=None,
    help="Continue the interrupted VAE run in this folder from its last checkpoint (same SOURCE).",
)
@click.option("--key", default=None, help="Array to use from a .npz file with several.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or summary.")
@click.option(
    "--model", "model_name", type=click.Choice(list(ESTIMATORS)), default="vae", show_default=True,
    help="vae: variational autoencoder; ppca: probabilistic PCA (closed form); fa: factor analysis (EM); "
    "gplvm: Bayesian GP-LVM (small data). "
    "diffusion: variational diffusion model.",
)
@click.option("--table", is_flag=True, help="Model SOURCE (.csv) as a table of mixed column types, even if all numeric.")
@config_options
def fit(source, out, resume, key, quiet, model_name, table, **options):
    """Train a model on SOURCE: a .npy/.npz/.csv/.parquet file, a folder of images or of .npy
    shards, or a built-in dataset (digits, digits-train, digits-test). Writes the model (and metrics.csv for a VAE) to --out.

    A .parquet file, or a .csv with holes or a column of words, is modelled as a table
    (mixed column types, missing values); --table forces that for any .csv."""
    if out is None and resume is None:
        raise AevbError("say where the model goes: --out FOLDER (or --resume FOLDER to continue a run)")
    if out is not None and resume is not None and out.resolve() != resume.resolve():
        raise AevbError("--resume continues the run in its own folder; drop --out or give the same folder")
    if resume is not None and not ESTIMATORS[model_name].trains_in_steps:
        raise AevbError(f"--resume continues a VAE run; --model {model_name} fits in one go")
    writer = distributed.environment_rank() == 0  # one process of a torchrun job writes the run folder
    if writer and out is not None and (out / LOCK_FILE).is_file():
        with locked(out):  # a run still going in it is named before its checkpoint looks unfinished
            pass
    if writer and resume is None and checkpoint.unfinished_run(out):
        raise AevbError(
            f"{out} holds an unfinished run; continue it with: aevb fit {source} --resume {out} "
            f"(or start over in another --out folder, or delete {out / checkpoint.CHECKPOINT_FILE})"
        )
    out = out or resume
    _quiet(quiet)
    saved = checkpoint.saved_config(resume) if resume is not None else {}
    chosen_options = {name for name, value in options.items() if value is not None} | set(saved)
    estimator_class, what = estimator_for(model_name, source, table, chosen_options)
    model = estimator_class(**{**saved, **_options_for(estimator_class, options, what)})
    model.config  # checks the options before any data is read or folder made
    dataset = model.read_data(source, key, memory_map=model.trains_in_steps)
    note = model.describe_data(dataset)
    if note and not quiet:
        click.echo(printable_lines(note))
    if writer:
        checkpoint.prepare_folder(out)  # before any training: a folder that cannot be written fails now
        click.get_current_context().with_resource(locked(out))  # one fit at a time per run folder
    started = time.perf_counter()
    try:
        model.fit(dataset, progress=False if quiet else None, run_dir=out, resume=resume is not None)
    except TrainingStopped as stopped:
        if distributed.current().is_main:
            model.save(out)
        if isinstance(stopped, TrainingInterrupted):
            hint = f"; saved the best model so far; continue with: aevb fit {source} --resume {out}"
            raise TrainingInterrupted(f"{stopped}{hint}", stopped.result, stopped.exit_code - 128) from None
        raise
    if not distributed.current().is_main:
        return
    model.save(out)
    shape = dataset.shape if hasattr(dataset, "shape") else dataset.values.shape
    if not quiet and not model.trains_in_steps:
        click.echo(printable(
            f"fitted {type(model).__name__} to {shape[0]} rows x {shape[1]} features in "
            f"{time.perf_counter() - started:.1f}s; training log p(x) {model.score(dataset):.2f} nats/row; saved to {out}"
        ))
    elif not quiet:
        bound_name, bound = model.validation_bound()
        click.echo(printable(
            f"trained on {shape[0]} rows x {shape[1]} {'columns' if hasattr(dataset, 'columns') else 'features'} in "
            f"{time.perf_counter() - started:.1f}s ({len(model.history_)} epochs, stopped by {model.stopped_because_}); "
            f"best validation {bound_name} {bound:.2f} nats/row at epoch {model.best_epoch_}; saved to {out}"
        ))


@cli.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.option("-n", "n", type=int, default=64, show_default=True, callback=_positive, help="Rows to draw.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write the rows to .npy or .csv.")
@click.option("--png", type=click.Path(path_type=Path), default=None, help="Write an image grid (image data only).")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True)
@click.option("--mean", is_flag=True, help="Decoder means E[x|z] instead of draws of x.")
@click.option("--steps", type=int, default=None, callback=_positive,
              help="Diffusion models: steps of ancestral sampling [default: the model's sample_steps].")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def sample(model_dir, n, out, png, seed, mean, steps, quiet):
    """Draw N new rows from a trained model.

    Rows go to --out a chunk at a time, as they are drawn: any N in bounded memory
    (--png draws its grid in memory). A .csv has the training file's header and
    writes its whole-number columns as integers."""
    if out is None and png is None:
        raise AevbError("say where the samples go: --out FILE.npy|.csv and/or --png FILE.png")
    _quiet(quiet)
    model = load(model_dir)
    # a diffusion model: --steps of ancestral sampling, with a bar over each chunk's steps
    options = {"steps": steps, "progress": sys.stderr.isatty()} if hasattr(model, "bound_samples") else {}
    if steps is not None and not options:
        raise AevbError("--steps applies to diffusion models only")
    if png is None:
        streaming.sample_file(model, n, out, seed, mean, **options)
        return
    _image_model(model, "--png")  # before drawing: a diffusion model's draws take minutes
    rows = model.sample(n, seed=seed, mean=mean, **options)
    if out is not None:
        _write_rows(rows, out, model)
    save_grid(rows, model.image_shape_, png, model.preprocessor_.value_range(rows))


@cli.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.argument("source")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Latent means, .npy or .csv.")
@click.option("--key", default=None, help="Array to use from a .npz file with several.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def encode(model_dir, source, out, key, quiet):
    """Write the posterior mean E_q[z|x] of each row of SOURCE.

    A .npy SOURCE is read memory-mapped and encoded a chunk at a time, each written
    as it is done: any number of rows in bounded memory. For a folder of images a
    .csv starts each row with its file name; a .npy gets them in OUT.names.txt."""
    _quiet(quiet)
    model = load(model_dir)
    names = row_names(source)
    _say_names(streaming.encode_file(model, model.open_rows(source, key), source, out, names), out, quiet)


def _say_names(names_path: Path | None, out: Path, quiet: bool) -> None:
    """Tell where the file names of the rows of a .npy ``out`` went."""
    if names_path is not None and not quiet:
        click.echo(printable(f"row i of {out} is the image named on line i of {names_path}"))


T_SAMPLES_OPTION = click.option(
    "--t-samples", type=int, default=None, callback=_positive,
    help="Diffusion models: draws of t per row in the bound (more draws, a smaller Monte-Carlo error) "
    "[default: 16].",
)


def _draws(model, k: int, t_samples: int | None) -> int:
    """The draws per row: --t-samples for a diffusion model, --k for the others."""
    default = getattr(model, "DEFAULT_T_SAMPLES", None)  # diffusion models draw t, not z
    if default is not None:
        return t_samples or default
    if t_samples is not None:
        raise AevbError("--t-samples applies to diffusion models only; use --k")
    return k


def _draws_option(model) -> str:
    """The option that sets :func:`_draws`."""
    return "--t-samples" if hasattr(model, "DEFAULT_T_SAMPLES") else "--k"


PROPOSAL_OPTION = click.option(
    "--proposal", type=click.Choice(typing.get_args(Proposal)), default="posterior", show_default=True,
    help="Where the importance samples of z come from: q(z|x) (the IWAE bound) or p(z) (naive Monte Carlo).",
)


@cli.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.argument("source")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Per-row scores, .csv or .npy.")
@click.option("--k", type=int, default=100, show_default=True, callback=_positive, help="Importance samples per row.")
@PROPOSAL_OPTION
@T_SAMPLES_OPTION
@click.option("--key", default=None, help="Array to use from a .npz file with several.")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option(
    "--pixel-map", type=click.Path(path_type=Path), default=None,
    help="Also write, per image, a PNG of each pixel's log-probability into this folder (dark: unlikely).",
)
def score(model_dir, source, out, k, proposal, t_samples, key, seed, quiet, pixel_map):
    """Per-row log p(x) estimate (nats), ELBO and its terms, for anomaly scores.

    A .npy SOURCE is read memory-mapped and scored in chunks, each written as it
    is done: any number of rows in bounded memory. Under torchrun the ranks share
    the chunks out; the scores are those of one process. --pixel-map reads SOURCE
    into memory."""
    _quiet(quiet)
    model = load(model_dir)
    k = _draws(model, k, t_samples)
    rows, names = model.open_rows(source, key), row_names(source)
    streaming.forecast_scoring(model, rows, source, k, seed, proposal, _group(), _draws_option(model))
    if pixel_map is not None:
        _write_pixel_maps(model, model.read_data(source, key), pixel_map, k, seed)
    _say_names(streaming.score_file(model, rows, source, out, k, seed, proposal, _group(), names), out, quiet)


def _image_model(model, option: str):
    if getattr(model, "image_shape_", None) is None:
        raise AevbError(f"{option} needs a model trained on images; this one was trained on plain rows")


def _write_pixel_maps(model, dataset, folder: Path, k: int, seed: int) -> None:
    """One PNG per image, NNNNNN.png in row order: log p(x_j | z) of each pixel (summed over
    channels), on one gray scale for all images from their lowest 1% (black) to their highest value."""
    _image_model(model, "--pixel-map")
    if not hasattr(model, "pixel_log_likelihood"):
        raise AevbError(f"--pixel-map works with a VAE; this is a {type(model).__name__}")
    values = model.pixel_log_likelihood(dataset, k=k, seed=seed)
    shape = model.image_shape_
    maps = values.reshape(len(values), *shape).sum(axis=-1) if len(shape) == 3 else values
    value_range = (float(np.percentile(maps, 1)), float(maps.max()))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise AevbError(f"cannot create the folder {folder}: {error.strerror}") from None
    for index, image in enumerate(maps.reshape(len(maps), -1)):
        save_grid(image[None], shape[:2], folder / f"{index:06d}.png", value_range)


@cli.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.argument("source")
@click.option("--png", type=click.Path(path_type=Path), default=None, help="A grid: each image, then its reconstruction.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="The reconstructions, .npy or .csv.")
@click.option("-n", "n", type=int, default=32, show_default=True, callback=_positive, help="Images in the --png grid.")
@click.option("--key", default=None, help="Array to use from a .npz file with several.")
def reconstruct(model_dir, source, png, out, n, key):
    """Each row of SOURCE through its code and back: E[x | z = E_q[z|x]]."""
    if out is None and png is None:
        raise AevbError("say where the reconstructions go: --out FILE.npy|.csv and/or --png FILE.png")
    model = load(model_dir)
    if png is not None:
        _image_model(model, "--png")
    rows = model.read_data(source, key).values
    rebuilt = model.reconstruct(rows if out is not None else rows[:n])
    if out is not None:
        _write_rows(rebuilt, out, model)
    if png is not None:
        pairs = np.stack([rows[:n], rebuilt[:n]], axis=1).reshape(-1, rows.shape[1])  # image, then its reconstruction
        save_grid(pairs, model.image_shape_, png, model.preprocessor_.value_range(rows[:n]))


def _group() -> distributed.Group:
    """The torchrun job this process belongs to (scoring runs on CPUs), or a group of one."""
    return distributed.join(torch.device("cpu"))


@cli.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.argument("source")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="The filled table, .csv or .parquet.")
@click.option("--k", type=int, default=100, show_default=True, callback=_positive, help="Importance samples of z per row.")
@click.option(
    "--multiple", type=int, default=None, callback=_positive,
    help="Write M draws of each hole instead of one best guess: M copies of the table, one after another, "
    "numbered in a first column _imputation (1..M).",
)
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def impute(model_dir, source, out, k, multiple, seed, quiet):
    """Fill the holes of the table SOURCE by importance-weighted posterior prediction;
    observed cells are written unchanged."""
    _quiet(quiet)
    model = load(model_dir)
    if not hasattr(model, "impute"):
        raise AevbError(f"{model_dir} was trained on a numeric array; impute needs a model trained on a table")
    table = model.read_data(source)
    cells = table.shape[1] * (multiple or 1)
    check_request(3 * 4 * k * min(len(table), EVAL_ROWS) * cells, f"--k {k}")  # a batch's draws
    check_request(3 * 8 * len(table) * cells, f"--multiple {multiple}")  # the filled copies
    filled = model.impute(table, k=k, multiple=multiple, seed=seed)
    if multiple is not None:
        import pandas as pd

        filled = pd.concat([t.assign(_imputation=m) for m, t in enumerate(filled, 1)], ignore_index=True)
        filled = filled[["_imputation", *filled.columns[:-1]]]
    write_table(filled, out)


@cli.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.argument("source")
@click.option("--k", type=int, default=1000, show_default=True, callback=_positive, help="Importance samples per row.")
@PROPOSAL_OPTION
@T_SAMPLES_OPTION
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None, help="Also write the figures as JSON.")
@click.option("--key", default=None, help="Array to use from a .npz file with several.")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def evaluate(model_dir, source, k, proposal, t_samples, json_path, key, seed, quiet):
    """Held-out ELBO, its terms, and the K-sample log p(x) estimate, in nats and bits/dim
    (and the exact log p(x) of linear-Gaussian models).

    A .npy SOURCE is read memory-mapped, chunk by chunk, into running sums: any
    number of rows in bounded memory. Under torchrun the ranks share the chunks out;
    the figures are those of one process."""
    _quiet(quiet)
    model = load(model_dir)
    k = _draws(model, k, t_samples)
    rows = model.open_rows(source, key)
    streaming.forecast_scoring(model, rows, source, k, seed, proposal, _group(), _draws_option(model))
    if hasattr(model, "bound_samples"):  # a diffusion model: its bound, rows in memory
        figures = model.evaluate(rows, k=k, seed=seed)
    else:
        figures = streaming.evaluate_rows(model, rows, source, k, seed, proposal, _group())
    if not distributed.current().is_main:
        return
    click.echo(format_diffusion_evaluation(figures) if hasattr(model, "bound_samples") else format_evaluation(figures))
    if json_path is not None:
        _write_json(figures, json_path)


def _write_json(figures: dict, path: Path) -> None:
    try:
        path.write_text(json.dumps(figures, indent=2) + "\n")
    except OSError as error:
        raise AevbError(f"cannot write {path}: {error.strerror or error}") from None


def format_evaluation(figures: dict) -> str:
    bound = " (bound on the discrete log-probability)" if figures["data"] == "levels" else ""
    lines = [
        f"rows: {figures['n_rows']}, features: {figures['n_features']}, data: {figures['data']}{bound}",
        f"{'':30}{'nats/row':>12}{'bits/dim':>10}",
    ]
    per_dim = figures["n_features"] * np.log(2)
    rows = [("exact log p(x)", "exact_log_likelihood")] if figures.get("exact_log_likelihood") is not None else []
    rows += [
        (f"log p(x) estimate (k={figures['k']})", "log_likelihood"),
        ("ELBO", "elbo"),
        ("  reconstruction", "reconstruction"),
        ("  KL(q(z|x) || p(z))", "kl"),
    ]
    for label, key in rows:
        value = figures[key]
        lines.append(f"{label:30}{value:12.3f}{(value if key == 'kl' else -value) / per_dim:10.4f}")
    source = "q(z|x)" if figures["proposal"] == "posterior" else "the prior p(z)"
    lines.append(
        f"estimate: importance sampling from {source}, mean effective sample size "
        f"{figures['effective_sample_size']:.1f} of {figures['k']}"
    )
    if figures["log_likelihood_std_error"] is not None:
        lines.append(f"standard error of the mean over rows: {figures['log_likelihood_std_error']:.3f} nats/row")
    lines.append(f"gap, log p(x) estimate - ELBO: {figures['elbo_gap']:.3f} nats/row")
    lines.append(
        f"active units: {figures['active_units']} of {figures['latent_dim']} "
        "(latent dimensions with Cov_x(E_q[z_i|x]) > 0.01)"
    )
    if figures["kl_per_dimension"] is not None:
        lines.append("KL per latent dimension: " + " ".join(f"{v:.2f}" for v in figures["kl_per_dimension"]))
    for number, layer in enumerate(figures.get("layers") or [], start=1):
        kl = "" if layer["kl"] is None else f"KL {layer['kl']:.3f} nats/row, "
        lines.append(f"latent layer {number}{' (nearest x)' if number == 1 else ''}: {kl}"
                     f"active units {layer['active_units']} of {layer['latent_dim']}")
    return "\n".join(lines)


def printable(text: str) -> str:
    """``text`` on one printable line: the undecodable bytes of non-UTF-8 file names
    and control characters (a newline in a name) shown as escapes, so that a message
    about any file prints, and stays one line."""
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return re.sub(r"[\x00-\x1f\x7f]", lambda match: repr(match.group())[1:-1], text)


@cli.command()
@click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path))
@click.argument("source", metavar="[DATA]", required=False)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="The HTML page to write.")
@click.option("--k", type=int, default=100, show_default=True, callback=_positive, help="Importance samples per row for the scores.")
@click.option("--key", default=None, help="Array to use from a .npz file with several.")
@click.option("--seed", type=int, default=0, show_default=True)
def report(run_dir, source, out, k, key, seed):
    """Write one self-contained HTML page about the run in RUN: training curves, the evaluation,
    samples, and with DATA real rows beside samples and reconstructions, the latent space, the
    score histogram with the most unusual rows, and for tables each column's real and synthetic
    distributions and the correlations."""
    model = load(run_dir)
    rows = model.read_data(source, key) if source is not None else None
    page = build_report(model, run_dir, rows, k=k, seed=seed)
    try:
        replace_atomically(out, lambda path: Path(path).write_text(page, encoding="utf-8"))
    except OSError as error:
        raise AevbError(f"cannot write {out}: {error.strerror or error}") from None


@cli.command()
@click.argument("run_dir", metavar="RUN", type=click.Path(path_type=Path))
@click.argument("real")
@click.option("--synthetic", default=None, help="Synthetic rows to judge (.csv, ...); default: as many sampled from the model.")
@click.option("--target", default=None, help="Column to predict: train-on-synthetic/test-on-real against train-on-real.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None, help="Also write the figures as JSON.")
@click.option("--seed", type=int, default=0, show_default=True)
def quality(run_dir, real, synthetic, target, json_path, seed):
    """How closely synthetic rows follow the REAL ones: each column's shape, each pair's trend,
    a classifier's real-vs-synthetic AUC, and with --target the use of the rows for prediction."""
    model = load(run_dir)
    real_rows, synthetic_rows, kinds = model_frames(model, real, synthetic, seed)
    figures = assess(real_rows, synthetic_rows, kinds, target, seed)
    for line in format_quality(figures).splitlines():
        click.echo(printable(line))
    if json_path is not None:
        _write_json(figures, json_path)
def printable_lines(text: str) -> str:
    """A table of ours, each line made :func:`printable` on its own: its line breaks stay."""
    return "\n".join(printable(line) for line in text.split("\n"))


def run(argv: list[str] | None = None) -> int:
    """The aevb command on ``argv``; its exit status. Errors print one line."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", AevbWarning)
        warnings.showwarning = _show_warning
        return _run(argv)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Our warnings as one line on stderr; any other in Python's usual form."""
    if issubclass(category, AevbWarning):
        click.echo(printable(f"aevb: warning: {message}"), err=True)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def _run(argv: list[str] | None) -> int:
    try:
        code = cli.main(args=argv, prog_name="aevb", standalone_mode=False)
        distributed.leave(together=True)
        return code or 0
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("aevb: interrupted", err=True)
        return 130
    except click.exceptions.NoArgsIsHelpError as error:
        error.show()  # a bare ``aevb``: the usage text, as click shows it, with click's status
        return error.exit_code
    except click.ClickException as error:
        click.echo(printable(f"aevb: error: {error.format_message()}"), err=True)
        return EXIT_USAGE
    except TrainingInterrupted as stopped:
        click.echo(printable(f"aevb: {stopped}"), err=True)
        return stopped.exit_code
    except AevbError as error:
        click.echo(printable(f"aevb: error: {error}"), err=True)
        return getattr(error, "exit_code", EXIT_USAGE)
    finally:
        distributed.leave()


def main(argv: list[str] | None = None) -> None:
    # Flush subnormals before torch starts worker threads: Adam's decaying moments
    # otherwise slow every step down (see benchmarks/).
    torch.set_flush_denormal(True)
    code = run(argv)
    if distributed.launched():
        # A torchrun worker has saved and said all it will; skip the interpreter's teardown,
        # where about 1 run in 30 aborted ("terminate called without an active exception",
        # C++ threads destroyed at exit) and turned a finished job into a failed one.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    main()
