"""The ``aevb`` command: fit, sample, encode, score, evaluate.

Each command parses its options, calls the library and writes files; the
options of ``fit`` are generated from :class:`aevb.config.VAEConfig`.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import sys
import time
import typing
from pathlib import Path

import click
import numpy as np
import torch

from .config import LinearConfig, TableConfig, VAEConfig
from .data import loaders as data
from .data.images import save_grid
from .diffusion.config import DiffusionConfig
from .diffusion.estimator import Diffusion, format_evaluation as format_diffusion_evaluation
from .errors import AevbError, TrainingInterrupted, TrainingStopped
from .registry import ESTIMATORS
from .scale import distributed, streaming
from .store.load import load
from .tables.estimator import TabularVAE
from .tables.io import is_table_file, read_table, write_table
from .train import checkpoint
from .vae.estimator import VAE

EXIT_USAGE = 2


def _parse_hidden(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers like 256,256, got {text!r}") from None


def _parse_names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


OPTION_CLASSES = (VAEConfig, LinearConfig, TableConfig, DiffusionConfig)
TABLE_ONLY_OPTIONS = {f.name for f in dataclasses.fields(TableConfig)} - {f.name for f in dataclasses.fields(VAEConfig)}


def config_options(command):
    """Add one --option per field of the option dataclasses; unset options keep their defaults."""
    seen: dict[str, str] = {}
    for options_class in OPTION_CLASSES:
        hints = typing.get_type_hints(options_class)
        for field in dataclasses.fields(options_class):
            if field.name in seen:
                continue
            kind = hints[field.name]
            if typing.get_origin(kind) is typing.Literal:
                click_type = click.Choice(typing.get_args(kind))
            elif typing.get_origin(kind) is tuple:
                click_type = str
            elif int in typing.get_args(kind) or kind is int:
                click_type = int
            else:
                click_type = float
            default = ",".join(map(str, field.default)) if isinstance(field.default, tuple) else field.default
            seen[field.name] = f"{field.metadata['help']} [default: {default}]"
            command = click.option(
                "--" + field.name.replace("_", "-"), field.name, type=click_type, default=None, help=seen[field.name]
            )(command)
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


def _write_rows(rows, path: Path, header: list[str] | None = None) -> None:
    """Write an array (.npy/.csv) or a DataFrame (.csv/.parquet)."""
    if hasattr(rows, "to_csv"):
        write_table(rows, path)
    else:
        _write_array(rows, path, header)


def _write_array(array: np.ndarray, path: Path, header: list[str] | None = None) -> None:
    try:
        if path.suffix.lower() == ".csv":
            with open(path, "w", newline="") as handle:
                writer = csv.writer(handle)
                if header:
                    writer.writerow(header)
                writer.writerows(array.tolist())
        elif path.suffix.lower() == ".npy":
            np.save(path, array)
        else:
            raise AevbError(f"cannot write {path}: use a .npy or .csv file name")
    except OSError as error:
        raise AevbError(f"cannot write {path}: {error.strerror or error}") from None


def _positive(ctx, param, value):
    if value is not None and value <= 0:
        raise click.BadParameter(f"must be a positive integer, got {value}")
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
    if resume is not None and model_name not in ("vae", "diffusion"):
        raise AevbError(f"--resume continues a VAE run; --model {model_name} fits in one go")
    if resume is None and checkpoint.unfinished_run(out):
        raise AevbError(
            f"{out} holds an unfinished run; continue it with: aevb fit {source} --resume {out} "
            f"(or start over in another --out folder, or delete {out / checkpoint.CHECKPOINT_FILE})"
        )
    out = out or resume
    saved = checkpoint.saved_config(resume) if resume is not None else {}
    table_options = {name for name in TABLE_ONLY_OPTIONS if options.get(name) is not None or name in saved}
    table = table or bool(table_options) or is_table_file(source)
    if table and model_name != "vae":
        raise AevbError(f"--model {model_name} takes numeric arrays only; tables are modelled by the vae")
    estimator_class = TabularVAE if table else ESTIMATORS[model_name]
    chosen = {**saved, **_options_for(estimator_class, options, "tables" if table else f"--model {model_name}")}
    model = estimator_class(**chosen)
    if table:
        dataset = read_table(source)
        if not quiet:
            click.echo(printable(model.infer_schema(dataset).summary()))
    else:
        dataset = data.load(source, key, memory_map=model_name in ("vae", "diffusion"))
    if not distributed.launched():
        checkpoint.prepare_folder(out)  # before any training: a folder that cannot be written fails now
    started = time.perf_counter()
    if isinstance(model, (VAE, Diffusion)):
        try:
            model.fit(dataset, progress=False if quiet else None, run_dir=out, resume=resume is not None)
        except TrainingStopped as stopped:
            if distributed.current().is_main:
                model.save(out)
            if isinstance(stopped, TrainingInterrupted):
                hint = f"; saved the best model so far; continue with: aevb fit {source} --resume {out}"
                raise TrainingInterrupted(f"{stopped}{hint}", stopped.result, stopped.exit_code - 128) from None
            raise
    else:
        model.fit(dataset)
    if not distributed.current().is_main:
        return
    model.save(out)
    shape = dataset.shape if table else dataset.values.shape
    if not quiet and not isinstance(model, (VAE, Diffusion)):
        click.echo(printable(
            f"fitted {type(model).__name__} to {shape[0]} rows x {shape[1]} features in "
            f"{time.perf_counter() - started:.1f}s; training log p(x) {model.score(dataset):.2f} nats/row; saved to {out}"
        ))
    elif not quiet:
        bound_name, bound = model.validation_bound()
        click.echo(printable(
            f"trained on {shape[0]} rows x {shape[1]} {'columns' if table else 'features'} in "
            f"{time.perf_counter() - started:.1f}s ({len(model.history_)} epochs, stopped by {model.stopped_because_}); "
            f"best validation {bound_name} {bound:.2f} nats/row at epoch {model.best_epoch_}; saved to {out}"
        ))


@cli.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.option("-n", "n", type=int, default=64, show_default=True, callback=_positive, help="Rows to draw.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write the rows to .npy or .csv.")
@click.option("--png", type=click.Path(path_type=Path), default=None, help="Write an image grid (image data only).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--mean", is_flag=True, help="Decoder means E[x|z] instead of draws of x.")
@click.option("--steps", type=int, default=None, callback=_positive,
              help="Diffusion models: steps of ancestral sampling [default: the model's sample_steps].")
def sample(model_dir, n, out, png, seed, mean, steps):
    """Draw N new rows from a trained model."""
    if out is None and png is None:
        raise AevbError("say where the samples go: --out FILE.npy|.csv and/or --png FILE.png")
    model = load(model_dir)
    if isinstance(model, Diffusion):
        rows = model.sample(n, seed=seed, mean=mean, steps=steps, progress=sys.stderr.isatty())
    elif steps is not None:
        raise AevbError("--steps applies to diffusion models only")
    else:
        rows = model.sample(n, seed=seed, mean=mean)
    if out is not None:
        _write_rows(rows, out)
    if png is not None:
        if model.image_shape_ is None:
            raise AevbError("--png needs a model trained on images; this one was trained on plain rows")
        pre = model.preprocessor_
        if pre.kind == "levels":
            value_range = (0.0, pre.n_levels - 1.0)
        elif pre.kind == "binary":
            value_range = (0.0, 1.0)
        else:
            value_range = (float(rows.min()), float(rows.max()))
        save_grid(rows, model.image_shape_, png, value_range)


@cli.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.argument("source")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Latent means, .npy or .csv.")
@click.option("--key", default=None, help="Array to use from a .npz file with several.")
def encode(model_dir, source, out, key):
    """Write the posterior mean E_q[z|x] of each row of SOURCE."""
    model = load(model_dir)
    latents = model.transform(model.read_data(source, key))
    _write_array(latents, out, [f"z{i}" for i in range(latents.shape[1])])


T_SAMPLES_OPTION = click.option(
    "--t-samples", type=int, default=None, callback=_positive,
    help=f"Diffusion models: draws of t per row in the bound (more draws, a smaller Monte-Carlo error) "
    f"[default: {Diffusion.DEFAULT_T_SAMPLES}].",
)


def _draws(model, k: int, t_samples: int | None) -> int:
    """The draws per row: --t-samples for a diffusion model, --k for the others."""
    if isinstance(model, Diffusion):
        return t_samples or Diffusion.DEFAULT_T_SAMPLES
    if t_samples is not None:
        raise AevbError("--t-samples applies to diffusion models only; use --k")
    return k


PROPOSAL_OPTION = click.option(
    "--proposal", type=click.Choice(["posterior", "prior"]), default="posterior", show_default=True,
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
@click.option("--seed", type=int, default=0, show_default=True)
def score(model_dir, source, out, k, proposal, t_samples, key, seed):
    """Per-row log p(x) estimate (nats), ELBO and its terms, for anomaly scores.

    A .npy SOURCE is read memory-mapped and scored in chunks, each written as it
    is done: any number of rows in bounded memory. Under torchrun the ranks share
    the chunks out; the scores are those of one process."""
    model = load(model_dir)
    k = _draws(model, k, t_samples)
    if isinstance(model, TabularVAE):
        columns = model.row_scores(model.read_data(source, key), k=k, seed=seed, proposal=proposal)
        _write_array(np.column_stack(list(columns.values())), out, list(columns))
        return
    streaming.score_file(model, _numeric_rows(model, source, key), source, out, k, seed, proposal, _group())


def _numeric_rows(model, source: str, key: str | None) -> np.ndarray:
    """The rows of SOURCE: memory-mapped for a .npy file or folder of .npy shards, else read into memory."""
    if streaming.readable_lazily(Path(source)):
        return streaming.open_rows(Path(source))
    return model.read_data(source, key).values


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
@click.option("--seed", type=int, default=0, show_default=True)
def impute(model_dir, source, out, k, multiple, seed):
    """Fill the holes of the table SOURCE by importance-weighted posterior prediction;
    observed cells are written unchanged."""
    model = load(model_dir)
    if not isinstance(model, TabularVAE):
        raise AevbError(f"{model_dir} was trained on a numeric array; impute needs a model trained on a table")
    filled = model.impute(read_table(source), k=k, multiple=multiple, seed=seed)
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
@click.option("--seed", type=int, default=0, show_default=True)
def evaluate(model_dir, source, k, proposal, t_samples, json_path, key, seed):
    """Held-out ELBO, its terms, and the K-sample log p(x) estimate, in nats and bits/dim
    (and the exact log p(x) of linear-Gaussian models).

    A .npy SOURCE is read memory-mapped, chunk by chunk, into running sums: any
    number of rows in bounded memory. Under torchrun the ranks share the chunks out;
    the figures are those of one process."""
    model = load(model_dir)
    k = _draws(model, k, t_samples)
    if isinstance(model, TabularVAE):
        figures = model.evaluate(model.read_data(source, key), k=k, seed=seed, proposal=proposal)
    elif isinstance(model, Diffusion):
        figures = model.evaluate(_numeric_rows(model, source, key), k=k, seed=seed)
    else:
        rows = _numeric_rows(model, source, key)
        figures = streaming.evaluate_rows(model, rows, source, k, seed, proposal, _group())
    if not distributed.current().is_main:
        return
    click.echo(format_diffusion_evaluation(figures) if isinstance(model, Diffusion) else format_evaluation(figures))
    if json_path is not None:
        try:
            json_path.write_text(json.dumps(figures, indent=2) + "\n")
        except OSError as error:
            raise AevbError(f"cannot write {json_path}: {error.strerror or error}") from None


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
    return "\n".join(lines)


def printable(text: str) -> str:
    """``text`` on one printable line: the undecodable bytes of non-UTF-8 file names
    and control characters (a newline in a name) shown as escapes, so that a message
    about any file prints, and stays one line."""
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return re.sub(r"[\x00-\x1f\x7f]", lambda match: repr(match.group())[1:-1], text)


def run(argv: list[str] | None = None) -> int:
    """The aevb command on ``argv``; its exit status. Errors print one line."""
    try:
        code = cli.main(args=argv, prog_name="aevb", standalone_mode=False)
        distributed.leave(together=True)
        return code or 0
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("aevb: interrupted", err=True)
        return 130
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
