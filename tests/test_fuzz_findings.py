"""Property-based tests of the hostile findings: CSV separators and byte-order marks,
large offsets, seeds, sizes that cannot fit, odd files, interrupted outputs. Each class
is a strategy with a bounded number of examples; benchmarks/fuzz.py runs 10,000+."""

from __future__ import annotations

import numpy as np
from fuzz_cases import (
    csv_case,
    odd_file_case,
    output_case,
    precision_case,
    seed_case,
    size_case,
    written_rows_case,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from test_fuzz import CASES

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
