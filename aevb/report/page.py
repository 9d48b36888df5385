"""One self-contained HTML page about a run: every picture is inlined as base64 PNG,
so the file can be mailed, archived or opened offline, and loads nothing else."""

from __future__ import annotations

import base64
import csv
import html
import os
from pathlib import Path

import numpy as np

from ..errors import AevbError, check_regular_file, first_line
from ..store.fields import DamagedField, mapping, parse_json
from . import figures

ROWS_SHOWN = 8  # real, synthetic, reconstructed and unusual rows shown as tables or images
MOST_ROWS = 2000  # rows of DATA scored and mapped (the first ones)
CELLS_SHOWN = 12  # columns of a plain array shown in a table

STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
td, th { border: 1px solid #ddd; padding: 2px 6px; text-align: right; }
.pair { display: flex; gap: 2em; flex-wrap: wrap; align-items: flex-start; }
img { max-width: 100%; height: auto; }
"""


def _image(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _table(rows, header) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(value) -> str:
    if isinstance(value, (float, np.floating)):
        return "" if np.isnan(value) else f"{value:.4g}"
    return str(value)


def read_metrics(path: Path) -> list[dict]:
    """The rows of a metrics.csv as numbers; [] when there is none."""
    if not os.path.lexists(path):
        return []
    check_regular_file(path)  # a folder, FIFO or dangling link there is not what aevb wrote
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(handle)]
    except (OSError, ValueError, UnicodeDecodeError, csv.Error) as error:
        raise AevbError(f"cannot read {path} as metrics ({first_line(error)})") from None


def read_evaluation(path: Path) -> dict:
    """The figures of an evaluation.json (``aevb evaluate --out``)."""
    try:
        return mapping(parse_json(path.read_bytes()), "its top level")
    except DamagedField as error:
        raise AevbError(f"{path} is damaged: {error}") from None
    except OSError as error:
        raise AevbError(f"cannot read {path}: {error.strerror or error}") from None


class Report:
    """The sections of the page, in order; each is a heading and HTML."""

    def __init__(self, title: str):
        self.title, self.sections = title, []

    def add(self, heading: str, body: str) -> None:
        self.sections.append((heading, body))

    def html(self) -> str:
        parts = [f"<h2>{html.escape(h)}</h2>\n{b}" for h, b in self.sections]
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title><style>{STYLE}</style></head>"
            f"<body><h1>{html.escape(self.title)}</h1>\n" + "\n".join(parts) + "</body></html>\n"
        )


def _rows_view(model, rows, alt: str) -> str:
    """Rows as an image grid (image models), a table (tables), or their first cells (arrays)."""
    if hasattr(rows, "columns"):
        return _table(rows.head(ROWS_SHOWN).itertuples(index=False), list(rows.columns))
    rows = np.asarray(rows)[:ROWS_SHOWN * (ROWS_SHOWN if model.image_shape_ else 1)]
    if model.image_shape_:
        return _image(figures.image_grid(rows, model.image_shape_, model.preprocessor_.value_range(rows)), alt)
    shown = rows[:, :CELLS_SHOWN]
    return _table(shown, [f"x{j}" for j in range(shown.shape[1])])


def _pair(left_title: str, left: str, right_title: str, right: str) -> str:
    return f'<div class="pair"><div><h3>{left_title}</h3>{left}</div><div><h3>{right_title}</h3>{right}</div></div>'


def _evaluation_table(figures_: dict) -> str:
    plain = [(name, value) for name, value in figures_.items() if isinstance(value, (int, float, str)) or value is None]
    return _table(plain, ["figure", "value"])


def build(model, run: Path, data=None, k: int = 100, seed: int = 0) -> str:
    """The report of the model saved in ``run`` (with its metrics.csv), on the rows ``data``
    (a DataFrame for tables, an array or Dataset otherwise) when given."""
    report = Report(f"aevb report: {run.name or run} ({type(model).__name__})")
    history = read_metrics(run / "metrics.csv")
    if history:
        report.add("Training curves", _image(figures.training_curves(history), "training curves")
                   + "<p>From metrics.csv: each quantity on the training rows and on the held-out validation rows.</p>")
    values = getattr(data, "values", data) if data is not None and not hasattr(data, "columns") else data
    if values is not None:
        values = values[:MOST_ROWS]
        figures_ = model.evaluate(values, k=k, seed=seed)
    elif (run / "evaluation.json").is_file():
        figures_ = read_evaluation(run / "evaluation.json")
    else:
        figures_ = None
    if figures_ is not None:
        source = f"on the first {len(values)} rows of the data, k={k}" if values is not None else "from evaluation.json"
        report.add("Evaluation", f"<p>Nats per row ({html.escape(source)}).</p>" + _evaluation_table(figures_))
    n = ROWS_SHOWN * ROWS_SHOWN if model.image_shape_ else ROWS_SHOWN
    synthetic = model.sample(n if values is None or not hasattr(values, "columns") else max(n, len(values)), seed=seed)
    if values is None:
        report.add("Samples", _rows_view(model, synthetic, "samples"))
        return report.html()
    report.add("Samples beside real rows", _pair("real", _rows_view(model, values, "real rows"),
                                                 "sampled", _rows_view(model, synthetic, "samples")))
    report.add("Reconstructions", _pair("real", _rows_view(model, values, "real rows"),
                                        "reconstructed from E[z|x]", _rows_view(model, model.reconstruct(values[:n]), "reconstructions")))
    scores = model.score_samples(values, k=k, seed=seed)
    report.add("Latent space", _image(figures.latent_map(model.transform(values), scores), "latent means")
               + "<p>The posterior mean of each row, coloured by its log p(x).</p>")
    unusual = np.argsort(scores)[:ROWS_SHOWN]
    rows = values.iloc[unusual] if hasattr(values, "iloc") else np.asarray(values)[unusual]
    listing = _table([(int(i), float(scores[i])) for i in unusual], ["row", "log p(x)"])
    report.add("Scores and the most unusual rows", _image(figures.score_histogram(scores, unusual), "score histogram")
               + _pair("lowest log p(x)", listing, "those rows", _rows_view(model, rows, "unusual rows")))
    if hasattr(values, "columns"):
        _table_sections(report, model, values, synthetic)
    return report.html()


def _table_sections(report: Report, model, real, synthetic) -> None:
    columns = model.schema_.columns
    report.add("Columns: real and synthetic", _image(figures.marginals(real, synthetic, columns), "marginals"))
    numeric = [c.name for c in columns if c.kind in ("continuous", "integer", "boolean")]
    if len(numeric) >= 2:
        as_numbers = [model.schema_.encode(frame)[:, [i for i, c in enumerate(columns) if c.name in numeric]]
                      for frame in (real, synthetic)]
        complete = [rows[~np.isnan(rows).any(axis=1)] for rows in as_numbers]
        report.add("Correlations", _image(figures.correlations(*complete, numeric), "correlation heatmaps")
                   + "<p>Pearson correlations of the numeric and yes/no columns (rows without holes).</p>")
