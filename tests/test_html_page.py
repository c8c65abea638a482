"""The HTML leaderboard page: its structure (no browser needed) and, in a headless Chromium
where there is one, its layout at 1,400 px."""

from __future__ import annotations

import html
import io
import itertools
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lfxbench.errors import LfxbenchError
from lfxbench.report import browser
from lfxbench.report.html_format import num
from lfxbench.report.html_page import render_page
from lfxbench.report.leaderboard import aggregate

MODELS = ("mnist_ae", "mnist_vae_beta_4", "classifier")
FEATURE_METHODS = (
    "saliency", "integrated_gradients", "gradient_shap", "deeplift", "random", "relax",
    "u_relax", "cocoa_neighbours", "embedding_activation_x_gradient",
)  # fmt: skip
EXAMPLE_METHODS = ("deep_knn", "simplex", "tracin")
FEATURE_METRICS = {
    "faithfulness_correlation": "higher",
    "model_parameter_randomisation": "lower",
    "complexity": "lower",
    "sparseness": "higher",
    "noise_score": "higher",
    "pointing_game": "higher",
}
EXAMPLE_METRICS = {"similarity_rate": "higher", "top_k_intersection": "higher"}


def _results(models=MODELS, seeds=3, pair_metric="pearson_agreement") -> pd.DataFrame:
    """Tidy results as a run writes them: 12 methods, 6 feature + 2 example metrics,
    agreement across models (every method) and across methods (per model and kind)."""
    rng = np.random.default_rng(0)
    rows = []

    def row(model, method, kind, metric, direction, seed, model_b="", method_b=""):
        rows.append(
            dict(
                model=model, dataset="mnist_5k", method=method, method_kind=kind,
                metric=metric, direction=direction, seed=seed, model_b=model_b,
                method_b=method_b, value=float(rng.normal(0.5, 0.2)),
                metric_seconds=float(rng.uniform(0.01, 3)),
                attribution_seconds_per_example=float(rng.uniform(1e-5, 0.2)),
                training_seconds=12.5,
            )
        )  # fmt: skip

    kinds = [(m, "feature", FEATURE_METRICS) for m in FEATURE_METHODS]
    kinds += [(m, "example", EXAMPLE_METRICS) for m in EXAMPLE_METHODS]
    for seed, model in itertools.product(range(seeds), models):
        for method, kind, metrics in kinds:
            for metric, direction in metrics.items():
                row(model, method, kind, metric, direction, seed)
        for methods, kind in ((FEATURE_METHODS, "feature"), (EXAMPLE_METHODS, "example")):
            for first, second in itertools.combinations(methods, 2):
                row(model, first, kind, "spearman_agreement", "higher", seed, model, second)
    for seed, (first, second) in itertools.product(range(seeds), itertools.combinations(models, 2)):
        for method, kind, _ in kinds:
            row(first, method, kind, pair_metric, "higher", seed, second, method)
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def board() -> pd.DataFrame:
    return aggregate(_results())


class _Tables(HTMLParser):
    """Every table of a page: its attributes, header rows and body rows of cells, each
    cell (tag, attributes, text)."""

    def __init__(self, text: str):
        super().__init__()
        self.tables: list[dict] = []
        self._open: list[dict] = []
        self._cell: list | None = None
        self._section = "tbody"
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._open.append({"attrs": attrs, "thead": [], "tbody": []})
            self.tables.append(self._open[-1])
        elif not self._open:
            return
        elif tag in ("thead", "tbody"):
            self._section = tag
        elif tag == "tr":
            self._open[-1][self._section].append([])
        elif tag in ("td", "th"):
            self._cell = [tag, attrs, ""]
            self._open[-1][self._section][-1].append(self._cell)
        elif tag == "b" and self._cell is not None:
            self._cell[1]["bold-tag"] = "1"

    def handle_endtag(self, tag):
        if tag == "table" and self._open:
            self._open.pop()
        elif tag in ("td", "th"):
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[2] += data


def _classes(cell) -> set[str]:
    return set(cell[1].get("class", "").split())


def _leaderboards(page: str) -> list[dict]:
    return [t for t in _Tables(page).tables if "leaderboard" in t["attrs"].get("class", "")]


def _heat_maps(page: str) -> list[dict]:
    return [t for t in _Tables(page).tables if "heat" in t["attrs"].get("class", "")]


def _names(table: dict) -> set[str]:
    """Row and column names of a heat map."""
    columns = {cell[2] for cell in table["thead"][0][1:]}
    rows = {row[0][2] for row in table["tbody"]}
    return (columns | rows) - {"", "method"}


def test_one_table_per_model_and_kind_with_one_row_per_method(board):
    tables = _leaderboards(render_page(board, "synthetic"))
    shown = [(t["attrs"]["data-model"], t["attrs"]["data-kind"]) for t in tables]
    assert sorted(shown) == sorted(itertools.product(MODELS, ("feature", "example")))
    for table in tables:
        methods = FEATURE_METHODS if table["attrs"]["data-kind"] == "feature" else EXAMPLE_METHODS
        assert sorted(row[0][2] for row in table["tbody"]) == sorted(methods)
        metrics = FEATURE_METRICS if table["attrs"]["data-kind"] == "feature" else EXAMPLE_METRICS
        # Two header rows: the groups (quality, then time), then one column each.
        top, bottom = table["thead"]
        groups = [(cell[2], int(cell[1].get("colspan", 1))) for cell in top[1:]]
        assert groups == [("quality", len(metrics)), ("time", len(metrics) + 2)]
        headers = [cell[2] for cell in bottom]
        # The board's order of metrics (aggregate sorts them by name).
        assert headers[: len(metrics)] == [
            f"{m.replace('_', ' ')}\xa0{'↑' if metrics[m] == 'higher' else '↓'}"
            for m in sorted(metrics)
        ]
        assert headers[len(metrics)] == "attribution [ms/example]"
        assert headers[-1] == "training [s]"
        assert all(len(row) == 1 + len(headers) for row in table["tbody"])


def _cell(table: dict, method: str, column: int):
    row = next(row for row in table["tbody"] if row[0][2] == method)
    return row[column]


def _column(table: dict, metric: str) -> int:
    headers = [cell[2] for cell in table["thead"][1]]
    return 1 + next(i for i, text in enumerate(headers) if text.startswith(metric))


def test_the_best_value_of_each_metric_is_bold_and_every_rank_1_with_it(board):
    model, metric = "mnist_ae", "complexity"  # lower is better
    rows = board[board["model"].eq(model) & board["metric"].eq(metric) & board["model_b"].eq("")]
    best = rows.loc[rows["mean"].idxmin(), "method"]
    # Per-seed values of 3 seeds separate no method (every rank is 1): rank by the mean to
    # have one best, then make a second method not significantly worse, rank 1 too.
    assert set(rows["rank"]) == {1}
    board = board.assign(rank=board["rank_by_mean"])
    runner_up = rows.sort_values("mean")["method"].iloc[1]
    tied = board.copy()
    tied.loc[tied["method"].eq(runner_up) & tied.index.isin(rows.index), "rank"] = 1
    for frame, bold in ((board, {best}), (tied, {best, runner_up})):
        table = next(
            t
            for t in _leaderboards(render_page(frame, "t"))
            if t["attrs"]["data-model"] == model and t["attrs"]["data-kind"] == "feature"
        )
        column = _column(table, "complexity")
        shown = {m for m in FEATURE_METHODS if "best" in _classes(_cell(table, m, column))}
        assert shown == bold
    # Higher is better elsewhere: the maximum is the bold one.
    rows = board[board["model"].eq(model) & board["metric"].eq("sparseness")]
    rows = rows[rows["model_b"].eq("")]
    table = next(
        t for t in _leaderboards(render_page(board, "t")) if t["attrs"]["data-model"] == model
    )
    column = _column(table, "sparseness")
    shown = {m for m in FEATURE_METHODS if "best" in _classes(_cell(table, m, column))}
    assert shown == {rows.loc[rows["mean"].idxmax(), "method"]}


def test_values_show_mean_rank_and_95_ci_from_ci95_or_the_boards_own_bounds(board):
    single = board[board["model_b"].eq("")]
    record = single.iloc[0]
    low, high = record["mean"] - record["ci95"], record["mean"] + record["ci95"]

    def cell_of(frame):
        table = next(
            t
            for t in _leaderboards(render_page(frame, "t"))
            if t["attrs"]["data-model"] == record["model"]
            and t["attrs"]["data-kind"] == record["method_kind"]
        )
        return _cell(table, record["method"], _column(table, record["metric"].replace("_", " ")))

    older = board.drop(columns=["ci_low", "ci_high", "ci_method"])  # a board with ci95 only
    _, attrs, text = cell_of(older)
    assert text.startswith(num(record["mean"])) and f"#{record['rank']}" in text
    assert f"[{num(low, 3)}, {num(high, 3)}]" in text
    assert "95 % CI" in attrs["title"] and "t over 3 seeds" in attrs["title"]
    _, attrs, _ = cell_of(board)  # the board's own interval, with its method
    assert f"({record['ci_method']})" in attrs["title"]
    assert float(attrs["data-sort"]) == pytest.approx(record["mean"])

    own = board.assign(ci_low=board["mean"] - 0.25, ci_high=board["mean"] + 0.5)
    own["ci_method"] = "bootstrap"
    _, attrs, text = cell_of(own)
    assert f"[{num(record['mean'] - 0.25, 3)}, {num(record['mean'] + 0.5, 3)}]" in text
    assert "(bootstrap)" in attrs["title"]

    _, attrs, text = cell_of(older.drop(columns="ci95"))
    assert "[" not in text and "CI" not in attrs["title"]


def test_agreement_across_models_is_one_matrix_set_not_a_1x1_table_per_method():
    # Two models: one pair per method, so one table methods × pairs per kind of method.
    page = render_page(aggregate(_results(models=MODELS[:2])), "t")
    across = [t for t in _heat_maps(page) if "vs" in "".join(c[2] for c in t["thead"][0])]
    assert len(across) == 2
    for table in across:
        methods = FEATURE_METHODS if table["attrs"]["data-kind"] == "feature" else EXAMPLE_METHODS
        assert sorted(row[0][2] for row in table["tbody"]) == sorted(methods)
        assert len(table["thead"][0]) == 2  # the method column and the one pair
    # Three models, three pairs: still one table per kind, a column per pair.
    page = render_page(aggregate(_results()), "t")
    across = [t for t in _heat_maps(page) if "vs" in "".join(c[2] for c in t["thead"][0])]
    assert [len(t["tbody"]) for t in across] == [len(FEATURE_METHODS), len(EXAMPLE_METHODS)]
    assert all(len(t["thead"][0]) == 1 + 3 for t in across)


def test_agreement_across_many_models_is_a_triangle_per_method():
    models = [f"model_{i}" for i in range(5)]  # ten pairs: too many columns
    page = render_page(aggregate(_results(models=models, seeds=2)), "t")
    triangles = [t for t in _heat_maps(page) if t["attrs"]["aria-label"].startswith("saliency")]
    assert len(triangles) == 1
    (table,) = triangles
    assert [c[2] for c in table["thead"][0][1:]] == models[:-1]
    assert [row[0][2] for row in table["tbody"]] == models[1:]
    filled = [[bool(c[2].strip()) for c in row[1:]] for row in table["tbody"]]
    assert filled == [[j <= i for j in range(4)] for i in range(4)]


def test_agreement_across_methods_never_mixes_feature_and_example_methods(board):
    maps = [t for t in _heat_maps(render_page(board, "t")) if "methods" in t["attrs"]["aria-label"]]
    within = [t for t in maps if "," in t["attrs"]["aria-label"]]  # "<model>, <kind> methods"
    assert len(within) == 2 * len(MODELS)
    for table in within:
        names = _names(table)
        assert names <= set(FEATURE_METHODS) or names <= set(EXAMPLE_METHODS), names
        kind = table["attrs"]["data-kind"]
        assert names == set(FEATURE_METHODS if kind == "feature" else EXAMPLE_METHODS)


def test_metric_agreement_is_one_small_table_per_model_and_kind(board):
    tables = [
        t
        for t in _Tables(render_page(board, "t")).tables
        if "metric-agreement" in t["attrs"].get("class", "")
    ]
    shown = [(t["attrs"]["data-model"], t["attrs"]["data-kind"]) for t in tables]
    assert sorted(shown) == sorted(itertools.product(MODELS, ("feature", "example")))
    for table in tables:
        metrics = FEATURE_METRICS if table["attrs"]["data-kind"] == "feature" else EXAMPLE_METRICS
        assert len(table["tbody"]) == len(metrics) * (len(metrics) - 1) // 2
        names = [cell[2] for cell in table["thead"][0]]
        assert names == ["metric a", "metric b", "methods", "Spearman ρ", "Kendall τ"]
        methods = FEATURE_METHODS if table["attrs"]["data-kind"] == "feature" else EXAMPLE_METHODS
        for row in table["tbody"]:
            assert row[2][2] == str(len(methods))
            for cell in row[3:]:
                assert -1 <= float(cell[1]["data-sort"]) <= 1 and "background" in cell[1]["style"]
    # One metric per block: nothing to compare, no section.
    one_metric = board[board["metric"].isin(["complexity", "similarity_rate"])]
    assert "metric-agreement" not in render_page(one_metric, "t")


class _Tags(HTMLParser):
    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_everything_user_provided_is_escaped():
    nasty = '<img src=x onerror="alert(1)">&amp;'
    renamed = {"mnist_ae": nasty + "model", "saliency": nasty + "method"}
    results = _results(models=MODELS[:2], seeds=2).replace(
        {"model": renamed, "model_b": renamed, "method": renamed, "method_b": renamed}
    )
    results["metric"] = results["metric"].replace("complexity", nasty + "metric")
    results["dataset"] = nasty + "data"
    trend = pd.DataFrame({"parameter": [nasty], "method": [nasty], "spearman_rho": [0.5]})
    page = render_page(aggregate(results), nasty, trend_table=trend)
    assert nasty not in page
    assert page.count(html.escape(nasty)) > 20
    tags = _Tags(page).tags
    assert not [tag for tag, _ in tags if tag == "img"]
    assert not [attrs for _, attrs in tags if "onerror" in attrs or "src" in attrs]


def test_the_page_is_self_contained_with_png_figures_embedded(board, tmp_path):
    png = tmp_path / "complexity_boxes.png"
    _png(png)
    pdf = tmp_path / "complexity_boxes.pdf"
    pdf.write_bytes(b"%PDF-1.4")
    trend = pd.DataFrame(
        {"parameter": ["beta"] * 2, "model_name": ["vae"] * 2, "metric": ["complexity"] * 2,
         "method": ["saliency", "relax"], "n": [6, 6], "spearman_rho": [0.8, -0.3],
         "p_value": [0.01, 0.5]}
    )  # fmt: skip
    page = render_page(board, "t", [png, pdf], trend_table=trend)
    assert page.count('src="data:image/png;base64,') == 1 and "%PDF" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//|url\(|@import""", page)
    assert "<style>" in page and "<script>" in page
    trends = [t for t in _Tables(page).tables if "trend" in t["attrs"].get("class", "")]
    assert [row[0][2] for row in trends[0]["tbody"]] == ["vae", "vae"]
    with pytest.raises(LfxbenchError, match="cannot embed"):
        render_page(board, "t", [tmp_path / "missing.png"])


def test_numbers_have_three_to_four_significant_digits():
    assert [num(v) for v in (6.664321, 0.0123456, 1234.56, 123456.7, 1.69e-08, 0.0, np.nan)] == [
        "6.664", "0.01235", "1235", "123457", "1.69e-8", "0", "–",
    ]  # fmt: skip
    assert num(-2.5e7) == "-2.5e7" and num(0.1, 3) == "0.1"


def _png(path: Path, width: int = 600, height: int = 300) -> None:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (70, 130, 180)).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())


# --- in a real browser -------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> str:
    try:
        return browser.find_chromium()
    except LfxbenchError as error:
        pytest.skip(f"no headless Chromium: {error}")


@pytest.fixture(scope="module")
def page_file(board, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("page")
    figures = [folder / f"figure_{i}.png" for i in range(3)]
    for figure in figures:
        _png(figure, width=1600, height=500)  # wider than the page: must scale down
    trend = pd.DataFrame(
        {"parameter": ["beta"], "model_name": ["vae"], "objective": ["elbo"],
         "method": ["saliency"], "metric": ["complexity"], "values": ["1, 4, 10"], "n": [9],
         "spearman_rho": [0.41], "p_value": [0.27]}
    )  # fmt: skip
    path = folder / "leaderboard.html"
    path.write_text(render_page(board, "synthetic", figures, trend), encoding="utf-8")
    return path


@pytest.mark.slow
def test_at_1400_px_every_table_shows_unclipped_and_no_value_wraps(chromium, page_file):
    measured = browser.layout(page_file, width=1400)
    tables = measured["tables"]
    # 6 leaderboards, 6 metric agreements, 2 heat maps across models, 6 across methods, 1
    # trend table.
    assert len(tables) == 21
    for table in tables:
        assert table["visible"] and not table["clipped"], table
        assert table["wrapped_cells"] == 0, (table, measured["wrapped_cells"])
    assert measured["scroll_width"] <= 1400


@pytest.mark.slow
def test_the_layout_check_sees_clipping_wrapping_and_overflow(chromium, tmp_path):
    page = tmp_path / "bad.html"
    page.write_text(
        "<!doctype html><html><body style='margin:0'>"
        "<div style='width:200px;overflow:hidden'><table aria-label='cut'><tr>"
        f"<td style='white-space:nowrap'>{'x' * 80}</td></tr></table></div>"
        "<table aria-label='wraps' style='width:120px'><tr><td>1.234 #1 and more words that "
        "wrap</td></tr></table>"
        "<table aria-label='wide'><tr><td style='white-space:nowrap'>"
        f"{'y ' * 1200}</td></tr></table>"
        "</body></html>",
        encoding="utf-8",
    )
    measured = browser.layout(page, width=800)
    cut, wraps, wide = measured["tables"]
    assert cut["clipped"] and "overflow: hidden" in " ".join(cut["reasons"])
    assert not wraps["clipped"] and wraps["wrapped_cells"] == 1
    assert wide["clipped"] and "viewport" in " ".join(wide["reasons"])
    assert measured["scroll_width"] > 800 and measured["clipped_tables"] == [0, 2]


@pytest.mark.slow
def test_a_header_click_sorts_rows_numerically(chromium, page_file):
    # Sorts the first table by a metric where higher is better: best first, then reversed.
    click = """<script>window.addEventListener('load', function () {
      var table = document.querySelector('table.leaderboard');
      var th = table.querySelector('th[data-first="desc"]'), out = [];
      var column = function () {
        return Array.prototype.map.call(table.tBodies[0].rows, function (r) {
          return r.cells[+th.dataset.col].dataset.sort; }).join(' ');
      };
      th.click(); out.push(column()); th.click(); out.push(column());
      document.body.insertAdjacentHTML('beforeend', '<pre id="sorted">' + out.join('|') +
        '</pre>');
    });</script>"""
    dom = browser.dump_dom(page_file, script=click)
    first, second = re.search(r'<pre id="sorted">(.*?)</pre>', dom)[1].split("|")
    values = [float(v) for v in first.split()]
    assert values == sorted(values, reverse=True)
    assert [float(v) for v in second.split()] == sorted(values)


@pytest.mark.slow
def test_screenshot_is_a_png_of_the_window_width(chromium, page_file, tmp_path):
    out = browser.screenshot(page_file, tmp_path / "page.png", width=1400, height=900)
    header = out.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(header[16:20], "big") == 1400
    assert int.from_bytes(header[20:24], "big") == 900


def test_no_browser_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv(browser.ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LfxbenchError, match=r"no headless Chromium found.*LFXBENCH_CHROMIUM"):
        browser.find_chromium()
    monkeypatch.setenv(browser.ENVIRONMENT_VARIABLE, str(tmp_path / "chrome"))
    with pytest.raises(LfxbenchError, match=r"LFXBENCH_CHROMIUM is .*not an executable"):
        browser.find_chromium()
    (tmp_path / "p.html").write_text("<p>page</p>")
    with pytest.raises(LfxbenchError, match="LFXBENCH_CHROMIUM"):
        browser.screenshot(tmp_path / "p.html", tmp_path / "p.png")
