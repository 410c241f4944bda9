"""Figures from records: the guidance-scale trade-off (the paper's Figure 3) and Pareto fronts.

Figures are drawn on ``matplotlib.figure.Figure`` objects (Agg for PNG, the SVG backend for
SVG) without pyplot, so plotting never touches a global backend or opens a window. Text from
records is drawn literally (no mathtext): a method called ``$x$`` is shown as typed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.figure import Figure

from auhead_bench.errors import BenchError
from auhead_bench.reporting.inputs import LoadedRecord, is_reference
from auhead_bench.reporting.stats import LEVEL, MIN_CLIPS, N_BOOT, SEED, Estimate, estimate
from auhead_bench.reporting.tables import ARROW, columns_of, unknown_metric

_RC = {
    "text.parse_math": False,  # record strings are data, never markup
    "svg.hashsalt": "auhead-bench",  # same figure, same SVG bytes
    "svg.fonttype": "none",  # text stays text in the SVG (searchable, small)
    "font.size": 9,
}
_UNSET: Any = object()
CHOSEN_COLOR = "#d62728"


@dataclass
class Point:
    """One record on a figure: its option value (tradeoff) and its estimates per metric."""

    loaded: LoadedRecord
    param_value: Any
    estimates: dict[str, Estimate]

    @property
    def label(self) -> str:
        return self.loaded.label


@dataclass
class Curve:
    """Records of one method on one dataset that differ only in the swept option."""

    method: str
    dataset: str
    fixed: dict[str, Any]
    points: list[Point] = field(default_factory=list)

    @property
    def name(self) -> str:
        extra = ",".join(f"{k}={json.dumps(v)}" for k, v in self.fixed.items())
        return (
            f"{self.method}[{extra}] on {self.dataset}"
            if extra
            else (f"{self.method} on {self.dataset}")
        )


def check_metrics(loaded: Sequence[LoadedRecord], metric_ids: Sequence[str]) -> dict[str, bool]:
    """metric id -> higher_is_better, or a one-line error naming an unknown id."""
    known = {c.metric_id: c.higher_is_better for c in columns_of(i.record for i in loaded)}
    for metric_id in metric_ids:
        if metric_id not in known:
            raise unknown_metric(metric_id, list(known))
    return {m: known[m] for m in metric_ids}


def _estimates(item: LoadedRecord, metric_ids: Sequence[str], **boot: Any) -> dict[str, Estimate]:
    out = {}
    for metric_id in metric_ids:
        result = item.record.metrics.get(metric_id)
        out[metric_id] = estimate(result, **boot) if result else Estimate(value=None)
    return out


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _order(value: Any) -> tuple[int, float, str]:
    return (0, float(value), "") if _numeric(value) else (1, 0.0, json.dumps(value))


def tradeoff_curves(
    loaded: Sequence[LoadedRecord],
    *,
    param: str,
    metric_ids: Sequence[str],
    method: str | None = None,
    dataset: str | None = None,
    **boot: Any,
) -> list[Curve]:
    """Group records into curves over ``param``; each curve's points in the option's order."""
    candidates = [
        i
        for i in loaded
        if (method is None or i.record.method.id == method)
        and (dataset is None or i.record.dataset.id == dataset)
    ]
    if not candidates:
        raise BenchError(
            f"no record matches method={method!r} dataset={dataset!r}",
            fix="check --method/--dataset against the records' ids",
        )
    with_param = [i for i in candidates if param in i.record.method.options]
    if not with_param:
        options = sorted({k for i in candidates for k in i.record.method.options})
        raise BenchError(
            f"no record has the method option {param!r}",
            fix=f"--param takes one of the records' method options: {', '.join(options) or 'none'}",
        )
    curves: dict[str, Curve] = {}
    for item in with_param:
        record = item.record
        fixed = {k: v for k, v in sorted(record.method.options.items()) if k != param}
        key = json.dumps([record.method.id, record.dataset.id, fixed], sort_keys=True)
        curve = curves.setdefault(key, Curve(record.method.id, record.dataset.id, fixed))
        curve.points.append(
            Point(item, record.method.options[param], _estimates(item, metric_ids, **boot))
        )
    for curve in curves.values():
        curve.points.sort(key=lambda p: _order(p.param_value))
    return list(curves.values())


def _errors(est: Estimate) -> tuple[float, float, str | None]:
    """(below, above, kind) for an error bar: the CI where there is one; the seed sd for a
    distribution metric (no per-clip values, so no CI); none on too few clips ("small"): a
    seed sd there would pass for an interval the data cannot give."""
    if est.value is None:
        return 0.0, 0.0, None
    if est.ci_low is not None and est.ci_high is not None:
        return max(0.0, est.value - est.ci_low), max(0.0, est.ci_high - est.value), "ci"
    if est.too_small:
        return 0.0, 0.0, "small"
    if est.seed_std is not None:
        return est.seed_std, est.seed_std, "sd"
    return 0.0, 0.0, None


def label_offsets(coords: Sequence[tuple[float, float]]) -> list[tuple[int, int]]:
    """Label offsets (points) that put each label on the side away from its nearest neighbour,
    so two close points never swap labels visually."""
    if not coords:
        return []
    xs, ys = [c[0] for c in coords], [c[1] for c in coords]
    sx, sy = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0
    out = []
    for i, (x, y) in enumerate(coords):
        others = [
            (abs(x - a) / sx + abs(y - b) / sy, b) for j, (a, b) in enumerate(coords) if j != i
        ]
        below = bool(others) and min(others)[1] <= y  # nearest neighbour is lower: label above
        dx = -6 if (x - min(xs)) / sx > 0.8 and len(coords) > 1 else 6  # right edge: text leftward
        out.append((dx, 5) if below or not others else (dx, -11))
    return out


def _axis_label(metric_id: str, higher: bool) -> str:
    return f"{metric_id} ({ARROW[higher]} better)"


def _save(fig: Figure, out: Path) -> list[Path]:
    """Write ``out``.png and ``out``.svg; a .png/.svg suffix on ``out`` is ignored."""
    out = Path(out)
    if out.suffix.lower() in (".png", ".svg"):
        out = out.with_suffix("")
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = [out.parent / f"{out.name}.png", out.parent / f"{out.name}.svg"]
    with matplotlib.rc_context(_RC):
        fig.savefig(paths[0], dpi=150, metadata={"Software": None})
        fig.savefig(paths[1], metadata={"Date": None, "Creator": None})
    return paths


def _caption(kinds: set[str | None], level: float, n_boot: int, min_clips: int) -> str:
    parts = []
    if "ci" in kinds:
        parts.append(f"error bars: {level:.0%} CI, bootstrap over clips ({n_boot} resamples)")
    if "sd" in kinds:
        parts.append("sd over seeds where a metric has no per-clip values")
    if "small" in kinds:
        parts.append(f"no error bar: n too small (fewer than {min_clips} clips)")
    return "; ".join(parts)


def _legend(ax: Any) -> None:
    """A legend only when something is labelled (else matplotlib warns "No artists with
    labels found to put in legend")."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best")


def parse_option_value(text: str) -> Any:
    """A command-line option value as YAML reads it: '3.5' -> 3.5, 'null' -> None."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _same(a: Any, b: Any) -> bool:
    if _numeric(a) and _numeric(b):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def plot_tradeoff(
    loaded: Sequence[LoadedRecord],
    *,
    param: str,
    x: str,
    ys: Sequence[str],
    out: Path,
    chosen: Any = _UNSET,
    method: str | None = None,
    dataset: str | None = None,
    title: str | None = None,
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    seed: int = SEED,
    min_clips: int = MIN_CLIPS,
) -> list[Path]:
    """One panel per y metric: x metric against it, a point per option value, CIs both ways.

    ``chosen`` is the option value to mark; unset, the record run with the method's default
    options is marked (the setting a user gets without asking for one).
    """
    if not ys:
        raise BenchError("no y metric given", fix="pass --y METRIC[,METRIC...]")
    directions = check_metrics(loaded, [x, *ys])
    boot = {"n_boot": n_boot, "level": level, "seed": seed, "min_clips": min_clips}
    curves = tradeoff_curves(
        loaded, param=param, metric_ids=[x, *ys], method=method, dataset=dataset, **boot
    )
    if chosen is not _UNSET and not any(
        _same(p.param_value, chosen) for c in curves for p in c.points
    ):
        values = sorted({json.dumps(p.param_value) for c in curves for p in c.points})
        raise BenchError(
            f"no record has {param}={json.dumps(chosen)} to mark as chosen",
            fix=f"--chosen takes one of: {', '.join(values)}",
        )
    plotted = 0
    kinds: set[str | None] = set()
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(4.6 * len(ys), 4.2), layout="constrained")
        axes = fig.subplots(1, len(ys), squeeze=False)[0]
        colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
        for ax, y in zip(axes, ys, strict=True):
            for index, curve in enumerate(curves):
                color = colors[index % len(colors)]
                points = [
                    p
                    for p in curve.points
                    if p.estimates[x].value is not None and p.estimates[y].value is not None
                ]
                plotted += len(points)
                offsets = label_offsets(
                    [(p.estimates[x].value, p.estimates[y].value) for p in points]  # type: ignore[misc]
                )
                for k, p in enumerate(points):
                    ex, ey = _errors(p.estimates[x]), _errors(p.estimates[y])
                    kinds.update({ex[2], ey[2]})
                    ax.errorbar(
                        [p.estimates[x].value],
                        [p.estimates[y].value],
                        xerr=[[ex[0]], [ex[1]]],
                        yerr=[[ey[0]], [ey[1]]],
                        fmt="o",
                        color=color,
                        ecolor=color,
                        alpha=0.9,
                        elinewidth=1,
                        capsize=3,
                        markersize=5,
                    )
                    ax.annotate(
                        f"{param}={json.dumps(p.param_value)}",
                        (p.estimates[x].value, p.estimates[y].value),
                        textcoords="offset points",
                        xytext=offsets[k],
                        ha="right" if offsets[k][0] < 0 else "left",
                        fontsize=7,
                        color="#333333",
                    )
                    if _is_chosen(p, chosen):
                        ax.plot(
                            [p.estimates[x].value],
                            [p.estimates[y].value],
                            marker="o",
                            markersize=15,
                            markerfacecolor="none",
                            markeredgecolor=CHOSEN_COLOR,
                            markeredgewidth=2,
                            linestyle="none",
                            label="chosen" if index == 0 else None,
                        )
                line = [p for p in points if _numeric(p.param_value)]
                if len(line) > 1:
                    ax.plot(
                        [p.estimates[x].value for p in line],
                        [p.estimates[y].value for p in line],
                        "-",
                        color=color,
                        linewidth=1.2,
                        label=curve.name,
                    )
                elif points:
                    ax.plot([], [], "o", color=color, label=curve.name)
            ax.set_xlabel(_axis_label(x, directions[x]))
            ax.set_ylabel(_axis_label(y, directions[y]))
            ax.grid(True, alpha=0.3)
            ax.margins(0.1)  # room for the point labels at the edges
            _legend(ax)
        if plotted == 0:
            raise BenchError(
                f"no record has values for both {x!r} and {', '.join(repr(y) for y in ys)}",
                fix="check the metrics' status with `auhead-bench table RUN_DIR`",
            )
        names = sorted({c.method for c in curves})
        fig.suptitle(title or f"Trade-off over {param}: {', '.join(names)}")
        caption = _caption(kinds, level, n_boot, min_clips)
        if caption:
            fig.supxlabel(caption, fontsize=7, color="#555555")
        return _save(fig, out)


def _is_chosen(point: Point, chosen: Any) -> bool:
    if chosen is _UNSET:
        record = point.loaded.record
        return record.experiment == record.method.id  # run with the method's default options
    return _same(point.param_value, chosen)


def pareto_front(
    values: Sequence[tuple[float, float]], x_higher: bool, y_higher: bool
) -> list[int]:
    """Indices of the points no other point beats on both axes (directions honoured)."""
    sx, sy = (1 if x_higher else -1), (1 if y_higher else -1)
    scored = [(sx * a, sy * b) for a, b in values]
    front = []
    for i, (a, b) in enumerate(scored):
        dominated = any(
            (c >= a and d >= b) and (c > a or d > b) for j, (c, d) in enumerate(scored) if j != i
        )
        if not dominated:
            front.append(i)
    return front


def plot_pareto(
    loaded: Sequence[LoadedRecord],
    *,
    x: str,
    y: str,
    out: Path,
    dataset: str | None = None,
    title: str | None = None,
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    seed: int = SEED,
    min_clips: int = MIN_CLIPS,
    reference_only: bool = True,
) -> list[Path]:
    """Every competing record as a point on (x, y), one panel per dataset, the Pareto front
    joined. Reference rows (ground_truth, static_frame) are left out: they bracket the
    benchmark, and a front of references says nothing about the methods. Records of reference
    methods alone are drawn without a front (``reference_only``), or refused (False)."""
    directions = check_metrics(loaded, [x, y])
    boot = {"n_boot": n_boot, "level": level, "seed": seed, "min_clips": min_clips}
    datasets = list(dict.fromkeys(i.record.dataset.id for i in loaded))
    if dataset is not None:
        if dataset not in datasets:
            raise BenchError(
                f"no record is on dataset {dataset!r}", fix=f"datasets: {', '.join(datasets)}"
            )
        datasets = [dataset]

    def panels_of(items: Sequence[LoadedRecord]) -> list[tuple[str, list[Point]]]:
        out = []
        for name in datasets:
            points = [
                Point(i, None, _estimates(i, [x, y], **boot))
                for i in items
                if i.record.dataset.id == name
            ]
            points = [p for p in points if p.estimates[x].value is not None]
            points = [p for p in points if p.estimates[y].value is not None]
            if points:
                out.append((name, points))
        return out

    panels = panels_of([i for i in loaded if not is_reference(i.record)])
    references_only = not panels and reference_only
    if references_only:
        panels = panels_of(loaded)
    if not panels:
        raise BenchError(
            f"no record (reference rows aside) has values for both {x!r} and {y!r}",
            fix="check the metrics' status with `auhead-bench table RUN_DIR`",
        )
    kinds: set[str | None] = set()
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(5.6 * len(panels), 4.6), layout="constrained")
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, (name, points) in zip(axes, panels, strict=True):
            coords = [(p.estimates[x].value, p.estimates[y].value) for p in points]
            front = (
                set()
                if references_only
                else set(pareto_front(coords, directions[x], directions[y]))  # type: ignore[arg-type]
            )
            offsets = label_offsets(coords)  # type: ignore[arg-type]
            for i, p in enumerate(points):
                ex, ey = _errors(p.estimates[x]), _errors(p.estimates[y])
                kinds.update({ex[2], ey[2]})
                on_front = i in front
                ax.errorbar(
                    [coords[i][0]],
                    [coords[i][1]],
                    xerr=[[ex[0]], [ex[1]]],
                    yerr=[[ey[0]], [ey[1]]],
                    fmt="o",
                    color="#1f77b4" if on_front else "#9a9a9a",
                    elinewidth=1,
                    capsize=3,
                    markersize=7 if on_front else 5,
                    zorder=3 if on_front else 2,
                )
                ax.annotate(
                    p.label,
                    coords[i],
                    textcoords="offset points",
                    xytext=offsets[i],
                    ha="right" if offsets[i][0] < 0 else "left",
                    fontsize=7,
                    color="#222222" if on_front else "#777777",
                )
            ordered = sorted((coords[i] for i in front), key=lambda c: c[0])
            if len(ordered) > 1:
                ax.plot(
                    [c[0] for c in ordered],
                    [c[1] for c in ordered],
                    "--",
                    color="#1f77b4",
                    linewidth=1,
                    label="Pareto front",
                )
                _legend(ax)
            ax.set_title(name, fontsize=9)
            ax.set_xlabel(_axis_label(x, directions[x]))
            ax.set_ylabel(_axis_label(y, directions[y]))
            ax.grid(True, alpha=0.3)
            ax.margins(0.1)  # room for the point labels at the edges
        suffix = " (reference rows only: no front)" if references_only else ""
        fig.suptitle(title or f"Pareto front: {x} vs {y}{suffix}")
        caption = _caption(kinds, level, n_boot, min_clips)
        if caption:
            fig.supxlabel(caption, fontsize=7, color="#555555")
        return _save(fig, out)


def sweeps(loaded: Sequence[LoadedRecord]) -> list[tuple[str, str]]:
    """(method id, option) pairs with 3+ records differing only in that numeric option.

    The leaderboard draws a trade-off plot for each without being told.
    """
    found: dict[tuple[str, str], int] = {}
    by_method: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for item in loaded:
        if is_reference(item.record):
            continue  # a reference's option (static_frame's frame) is no trade-off
        key = (item.record.method.id, item.record.dataset.id)
        by_method.setdefault(key, []).append(item.record.method.options)
    for (method, _), options in by_method.items():
        names = {k for o in options for k in o}
        for name in sorted(names):
            groups: dict[str, set[str]] = {}
            for o in options:
                if _numeric(o.get(name)):
                    rest = json.dumps({k: v for k, v in o.items() if k != name}, sort_keys=True)
                    groups.setdefault(rest, set()).add(json.dumps(o[name]))
            if any(len(values) >= 3 for values in groups.values()):
                found[(method, name)] = 1
    return list(found)
