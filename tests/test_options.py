"""Option constraints are declared once, with each option, and the command line, the
estimators and the resume check all read them; the registry picks the estimator."""

from __future__ import annotations

import ast
import dataclasses
import typing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import aevb
from aevb import cli, registry
from aevb.config import LinearConfig, TableConfig, VAEConfig
from aevb.diffusion.config import DiffusionConfig
from aevb.errors import AevbError, first_line
from aevb.gplvm.config import GPLVMConfig
from aevb.train import checkpoint

CLASSES = (VAEConfig, LinearConfig, TableConfig)
# A value each constraint refuses, and one it takes.
BAD_AND_GOOD = {
    "a positive integer": (0, 3),
    "one or more positive integers": ((4, 0), (4, 2)),
    "a positive number": (float("inf"), 0.5),
    "a number >= 0": (-1e-9, 0.0),
    "a number strictly between 0 and 1": (1.0, 0.25),
    "a positive number of seconds": (float("nan"), float("inf")),
    "a number of MiB >= 0": (-1.0, 0.0),
}


def _fields():
    for options_class in CLASSES:
        hints = typing.get_type_hints(options_class)
        for field in dataclasses.fields(options_class):
            yield options_class, field, hints[field.name]


@pytest.mark.parametrize("options_class, field, kind", list(_fields()), ids=lambda v: getattr(v, "name", ""))
def test_every_declared_constraint_is_enforced(options_class, field, kind):
    assert field.metadata["help"]
    check = field.metadata.get("check")
    if typing.get_origin(kind) is typing.Literal:
        with pytest.raises(AevbError, match=f"^{field.name} must be one of {', '.join(typing.get_args(kind))}, got 'nope'$"):
            options_class(**{field.name: "nope"})
        for choice in typing.get_args(kind):
            if options_class is TableConfig and choice in ("vamp", "linear", "conv", "categorical", "logistic-mixture"):
                continue  # refused for tables by a rule of their own
            assert getattr(options_class(**{field.name: choice}), field.name) == choice
    if check is None:
        return
    bad, good = BAD_AND_GOOD[check.wanted]
    if options_class is TableConfig and field.name == "latent_layers":
        good = 1  # tables take one latent layer, a rule of their own
    with pytest.raises(AevbError, match=f"^{field.name} must be {check.wanted}, got "):
        options_class(**{field.name: bad})
    with pytest.raises(AevbError, match=f"^{field.name} must be"):
        options_class(**{field.name: "text"})  # a value of the wrong type is a message, not a TypeError
    assert getattr(options_class(**{field.name: good}), field.name) == good


def test_optional_options_take_none():
    config = VAEConfig(max_time=None, grad_clip=None)
    assert config.max_time is None and config.grad_clip is None


def test_the_options_that_may_change_on_resume_are_declared_with_them():
    assert set(VAEConfig.may_change_on_resume()) == {
        "epochs", "patience", "max_time", "checkpoint_every", "learning_rate", "learning_rate_schedule", "grad_clip",
        "device", "precision", "threads",
    }
    assert TableConfig.may_change_on_resume() == VAEConfig.may_change_on_resume()
    saved = VAEConfig(epochs=3).to_dict()
    checkpoint.check_resumable(saved, VAEConfig(epochs=9, learning_rate=0.1), Path("run/c"))
    with pytest.raises(AevbError, match="--batch-size is 7 but the run in run used 128; only epochs, "):
        checkpoint.check_resumable(saved, VAEConfig(batch_size=7), Path("run/c"))


def test_the_command_line_shows_each_constraint_in_its_help():
    text = CliRunner().invoke(cli.cli, ["fit", "--help"], terminal_width=200).output
    assert "[default: 16; a positive integer]" in text  # --latent-dim
    assert "[default: 0.1; a number strictly between 0 and 1]" in text  # --validation-fraction


def test_the_registry_picks_the_estimator_by_model_or_by_the_data(tmp_path):
    numbers, words = tmp_path / "numbers.csv", tmp_path / "words.csv"
    numbers.write_text("a,b\n1,2\n3,4\n")
    words.write_text("a,b\n1,x\n3,y\n")
    assert registry.estimator_for("ppca", str(numbers)) == (aevb.PPCA, "--model ppca")
    assert registry.estimator_for("vae", str(numbers))[0] is aevb.VAE
    assert registry.estimator_for("vae", str(words)) == (aevb.TabularVAE, "tables")
    assert registry.estimator_for("vae", str(numbers), table=True)[0] is aevb.TabularVAE
    assert registry.estimator_for("vae", str(numbers), options={"max_categories"})[0] is aevb.TabularVAE
    with pytest.raises(AevbError, match="--model fa takes numeric arrays only"):
        registry.estimator_for("fa", str(words))
    assert registry.OPTION_CLASSES == (VAEConfig, LinearConfig, GPLVMConfig, DiffusionConfig, TableConfig)


def test_the_command_line_does_not_switch_on_estimator_classes():
    tree = ast.parse(Path(cli.__file__).read_text())
    classes = set(registry.BY_CLASS_NAME)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance":
            assert not {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)} & classes
        if isinstance(node, ast.ImportFrom):
            assert not {alias.name for alias in node.names} & classes, node.module


def test_score_and_evaluate_of_a_table_go_through_the_same_chunked_path(tmp_path):
    """The command scores a table as the library does (one chunk: the same seed), with its
    per-column scores."""
    from cli_helpers import call

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"size": rng.normal(size=40), "colour": rng.choice(["red", "blue"], 40)})
    frame.loc[3, "size"] = np.nan
    frame.to_csv(tmp_path / "t.csv", index=False)
    model = aevb.TabularVAE(latent_dim=2, hidden=(8,), epochs=2).fit(frame)
    model.save(tmp_path / "m")
    assert call(["score", tmp_path / "m", tmp_path / "t.csv", "--out", tmp_path / "s.npy", "--k", 4]) == 0
    expected = aevb.load(tmp_path / "m").row_scores(pd.read_csv(tmp_path / "t.csv"), k=4)
    np.testing.assert_array_equal(np.load(tmp_path / "s.npy"), np.column_stack(list(expected.values())))
    assert np.isnan(expected["size_log_likelihood"][3]) and expected["n_observed"][3] == 1


def test_first_line_of_an_error():
    assert first_line(ValueError("\n  bad thing\nmore detail")) == "bad thing"
    assert first_line(KeyError()) == "KeyError"
    assert first_line(FileNotFoundError(2, "No such file or directory", "x")) == "No such file or directory"
