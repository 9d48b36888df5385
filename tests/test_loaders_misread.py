"""Loaders read what the file holds: 16-bit PNGs at their depth, a CSV with a byte-order
mark keeps its first row, a ';' or tab separated CSV is split on its separator."""

import numpy as np
import pytest
from PIL import Image

from aevb.data import loaders
from aevb.errors import AevbError
from aevb.tables.io import is_table_file, read_table


def test_sixteen_bit_pngs_keep_their_depth(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 65536, size=(4, 6, 5), dtype=np.uint16)
    for i, image in enumerate(pixels):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
    assert Image.open(tmp_path / "0.png").mode.startswith("I")
    data = loaders.load(tmp_path)
    assert data.image_shape == (6, 5)
    np.testing.assert_array_equal(data.values, pixels.reshape(4, -1).astype(np.float64))


def test_sixteen_and_eight_bit_images_are_not_mixed(tmp_path):
    Image.fromarray(np.full((4, 4), 1000, dtype=np.uint16)).save(tmp_path / "a.png")
    Image.fromarray(np.full((4, 4), 10, dtype=np.uint8)).save(tmp_path / "b.png")
    with pytest.raises(AevbError, match="deeper than 8 bits.*a.png.*b.png"):
        loaders.load(tmp_path)


def test_a_byte_order_mark_does_not_eat_the_first_row(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeff1.5,2\n3,4\n5,6\n".encode())
    np.testing.assert_array_equal(loaders.load(path).values, [[1.5, 2], [3, 4], [5, 6]])
    named = tmp_path / "named.csv"
    named.write_bytes("\ufeffheight,weight\n1.5,\n3,4\n".encode())
    assert list(read_table(named).columns) == ["height", "weight"]


@pytest.mark.parametrize("separator", [";", "\t", "|"])
def test_the_separator_is_sniffed(tmp_path, separator):
    rows = np.random.default_rng(0).normal(size=(30, 3)).round(3)
    path = tmp_path / "x.csv"
    path.write_text("\n".join(separator.join(map(str, row)) for row in ["a b c".split(), *rows.tolist()]) + "\n")
    assert not is_table_file(path)  # numbers only: not a one-column table of 30 categories
    np.testing.assert_array_equal(loaders.load(path).values, rows)
    holes = tmp_path / "holes.csv"
    holes.write_text(f"a{separator}b\n1.5{separator}\n2{separator}yes\n")
    assert list(read_table(holes).columns) == ["a", "b"]


def test_a_mixed_separator_is_refused_with_a_hint(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("1,5;2\n3,4;4\n")
    with pytest.raises(AevbError, match="separated by ';'"):
        loaders.load(path)


def test_a_single_column_is_still_one_column(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("1.5\n2.5\n-3\n")
    assert loaders.load(path).values.shape == (3, 1)
