"""Property-based tests of the hostile findings: CSV separators and byte-order marks,
large offsets, seeds, sizes that cannot fit, odd files, interrupted outputs, damaged
checkpoints and config.json files, .npz members that are not arrays, odd run folders.
Each class is a strategy with a bounded number of examples; benchmarks/fuzz.py runs 10,000+."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from fuzz_cases import (
    NPZ_MEMBERS,
    RAW_JSON,
    RUN_FOLDER_ENTRIES,
    csv_case,
    damaged_checkpoint_case,
    damaged_config_case,
    leaf_paths,
    odd_file_case,
    odd_npz_case,
    output_case,
    precision_case,
    run_folder_case,
    seed_case,
    size_case,
    written_rows_case,
    tiny_model,
    tiny_run,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from test_fuzz import CASES

from aevb.train.checkpoint import RUN_FILES
from aevb.train.checkpoint_fields import PROGRESS_FIELDS

FAST = settings(max_examples=60, deadline=None, derandomize=True)

FINITE = st.floats(-1e15, 1e15, allow_nan=False, allow_infinity=False)


@FAST
@given(values=hnp.arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(2, 4)), elements=FINITE),
       separator=st.sampled_from([",", ";", "\t", "|"]), bom=st.booleans(), header=st.booleans())
def test_csv_separators_and_byte_order_marks(values, separator, bom, header):
    CASES["CSV separators, BOMs, headers"] += 1
    assert csv_case(values, separator, bom, header) == "success"


@FAST
@given(offset=st.sampled_from([0.0, 1.7e9, 1e12, -1e12, 1e-12, 1e15]),
       spread=st.sampled_from([1e-20, 1e-9, 1e-3, 1.0, 1e3]), n=st.integers(2, 50), seed=st.integers(0, 99))
def test_large_offsets_keep_their_precision(offset, spread, n, seed):
    CASES["offsets and spreads (float64 standardization)"] += 1
    if abs(offset) > 0 and spread / max(abs(offset), 1e-300) < 1e-15:
        return  # below float64's own resolution: no precision to keep
    assert precision_case(offset, spread, n, seed) == "success"


@FAST
@given(seed=st.one_of(st.integers(-(2**70), 2**70), st.booleans(), st.floats(), st.text(max_size=3)))
def test_any_seed(seed):
    CASES["seeds of any value"] += 1
    outcome = seed_case(seed)
    valid = isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**63
    assert outcome == ("success" if valid else "clean error")


SIZES = st.fixed_dictionaries({
    "latent_dim": st.integers(1, 10**9), "hidden": st.lists(st.integers(1, 10**9), min_size=1, max_size=3).map(tuple),
    "mc_samples": st.integers(1, 10**9), "prior_components": st.integers(1, 10**9),
    "prior": st.sampled_from(["standard", "mog", "vamp"]), "posterior": st.sampled_from(["diagonal", "full", "iaf"]),
    "flow_layers": st.integers(1, 10**6), "objective": st.sampled_from(["elbo", "iwae"]), "k": st.integers(1, 10**9),
})


@FAST
@given(options=SIZES, n_features=st.integers(1, 10**6))
def test_any_size_is_estimated_not_allocated(options, n_features):
    CASES["size options (memory estimate)"] += 1
    assert size_case(options, n_features) in ("success", "clean error")


@settings(FAST, max_examples=30)
@given(kind=st.sampled_from(["fifo", "folder", "dangling", "loop", "empty", "fifo_in_folder"]),
       suffix=st.sampled_from([".npy", ".npz", ".csv", ".parquet", ""]))
def test_odd_files_never_block(kind, suffix):
    CASES["odd files (FIFOs, folders, links)"] += 1
    assert odd_file_case(kind, suffix) == "clean error"


@FAST
@given(suffix=st.sampled_from([".npy", ".csv"]), n_blocks=st.integers(1, 5), fail_at=st.none() | st.integers(0, 4))
def test_interrupted_outputs_keep_the_earlier_file(suffix, n_blocks, fail_at):
    CASES["interrupted score outputs"] += 1
    outcome = output_case(suffix, n_blocks, fail_at)
    assert outcome == ("clean error" if fail_at is not None and fail_at < n_blocks else "success")


@FAST
@given(values=hnp.arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 4)), elements=FINITE),
       whole=st.lists(st.booleans(), min_size=4, max_size=4), header=st.booleans())
def test_written_rows_keep_the_header_and_whole_numbers(values, whole, header):
    CASES["written rows (header, integers)"] += 1
    assert written_rows_case(values, tuple(whole[: values.shape[1]]), header) == "success"


# -- damaged files aevb wrote -------------------------------------------------------------------

SOME = settings(FAST, max_examples=30)
JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**20), 10**20), st.floats(), st.text(max_size=3),
    st.sampled_from(sorted(RAW_JSON)), st.lists(st.integers(-3, 60), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
TENSORS = st.none() | st.tuples(
    st.sampled_from([np.float64, np.float32, np.float16, np.int64, np.uint8]),
    st.lists(st.integers(0, 6), max_size=2),
).flatmap(lambda kind: hnp.arrays(kind[0], tuple(kind[1]), elements=st.integers(0, 60) if kind[0] in (np.int64, np.uint8)
                                  else st.floats(-1e3, 1e3, width=16) | st.just(float("nan")))).map(torch.from_numpy)
CHECKPOINT_TENSORS = ["order", "sums", "rng/torch", "rng/batches", "model/encoder.0.0.weight", "best/decoder.0.0.bias",
                      "optimizer/0/exp_avg", "optimizer/0/exp_avg_sq", "optimizer/0/step", "junk"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("fuzz_run"))


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("fuzz_saved"))


@SOME
@given(change=st.one_of(st.tuples(st.sampled_from(PROGRESS_FIELDS), JSON_VALUES),
                        st.tuples(st.sampled_from(CHECKPOINT_TENSORS), TENSORS)))
def test_damaged_checkpoints_resume_or_say_one_line(finished_run, change):
    CASES["damaged checkpoint fields (--resume)"] += 1
    run, rows = finished_run
    assert damaged_checkpoint_case(run, rows, *change) in ("success", "clean error")


@SOME
@given(data=st.data())
def test_damaged_config_fields_load_or_say_one_line(saved_model, data):
    CASES["damaged config.json fields"] += 1
    model, rows = saved_model
    where = data.draw(st.sampled_from(leaf_paths(json.loads((model / "config.json").read_text()))))
    assert damaged_config_case(model, rows, where, data.draw(JSON_VALUES)) in ("success", "clean error")


@SOME
@given(kind=st.sampled_from(NPZ_MEMBERS), content=st.binary(max_size=200))
def test_npz_members_that_are_not_arrays(kind, content):
    CASES[".npz members that are not arrays"] += 1
    assert odd_npz_case(kind, content) == "clean error"


@SOME
@given(name=st.sampled_from([*RUN_FILES, "evaluation.json"]), kind=st.sampled_from(RUN_FOLDER_ENTRIES))
def test_odd_entries_in_a_run_folder(name, kind):
    CASES["odd entries in a run folder"] += 1
    assert run_folder_case(name, kind) in ("success", "clean error")
