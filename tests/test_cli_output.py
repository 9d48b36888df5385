"""The command's own multi-line output keeps its line breaks; only control characters
inside it (from file or column names) are escaped."""

from cli_helpers import call


def test_a_bare_aevb_prints_the_usage_not_an_error(capsys):
    code = call([])
    captured = capsys.readouterr()
    assert code == 2  # click's status for "no command given"
    assert "aevb: error" not in captured.err and "\\n" not in captured.err
    lines = captured.err.splitlines()
    assert lines[0].startswith("Usage: aevb") and any(line.strip().startswith("fit ") for line in lines)


def test_the_table_summary_is_a_table(tmp_path, capsys):
    path = tmp_path / "t.csv"
    path.write_text('height,color,"odd\x1bname"\n1.5,red,\n2.5,blue,3\n1.7,red,4\n1.2,blue,5\n')
    assert call(["fit", path, "--out", tmp_path / "run", "--epochs", 1, "--hidden", 8]) == 0
    out = capsys.readouterr().out
    assert "\\n" not in out and "\x1b" not in out
    lines = out.splitlines()
    assert lines[0].split() == ["column", "kind", "details"]
    assert lines[1].startswith("height") and lines[2].startswith("color")
    assert lines[3].startswith("odd\\x1bname")
