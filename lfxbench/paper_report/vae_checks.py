"""The VAE study's checks (000 §4.3 and App. C.3, 001 Fig. 4): trends of the unit
correlation and the attribution entropy with β, pooled over both VAE types and all seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from scipy import stats

from lfxbench.paper_report.checks import Check, Finding, fmt
from lfxbench.paper_report.runs import PAPER_DATASETS, Missing, Run

SIGNIFICANCE = 0.05  # "does not decrease significantly": not (rho < 0 and p < SIGNIFICANCE)
NEAR_MAXIMUM = 0.8  # "close to the maximal entropy": at least this share of log d_H


def _trend_points(run: Run, family: str, metric: str, method: str) -> pd.DataFrame:
    models = run.family(family)
    if not models:
        raise Missing(f"no {PAPER_DATASETS[family]} model in run {run.name}")
    frames = []
    for model_id in models:
        model = run.model(model_id)
        values = run.values(model_id, method, metric)
        frames.append(
            pd.DataFrame(
                {
                    "beta": float(model["params"].get("beta", math.nan)),
                    "objective": model.get("recipe", {}).get("objective"),
                    "value": values.to_numpy(),
                }
            )
        )
    points = pd.concat(frames, ignore_index=True).dropna(subset=["beta"])
    if points["beta"].nunique() < 2:
        raise Missing(f"one β only for {PAPER_DATASETS[family]} in run {run.name}")
    return points


def _spearman(points: pd.DataFrame) -> tuple[float, float]:
    if points["value"].nunique() < 2 or points["beta"].nunique() < 2:
        return math.nan, math.nan
    result = stats.spearmanr(points["beta"], points["value"])
    return float(result.statistic), float(result.pvalue)


def _describe_trend(points: pd.DataFrame) -> str:
    rho, p = _spearman(points)
    per_type = []
    for objective, part in points.groupby("objective", sort=False):
        if part["beta"].nunique() >= 2:
            per_type.append(f"{objective} {fmt(_spearman(part)[0])}")
    by_type = f"; per type: {', '.join(per_type)}" if per_type else ""
    return f"Spearman ρ = {fmt(rho)} (p = {fmt(p)}, {len(points)} VAEs{by_type})"


class FamilyCheck(Check):
    """A check of one method over every VAE of a dataset family (fields ``family``, ``method``)."""

    family: str
    method: str

    def models(self, run: Run) -> list[str]:
        return run.family(self.family)

    def methods(self) -> tuple[str, ...]:
        return (self.method,)


@dataclass(frozen=True)
class Trend(FamilyCheck):
    """Sign of the Spearman correlation of a metric with β, both VAE types pooled."""

    study: str
    family: str
    metric: str
    sign: int  # +1: increases with β, -1: decreases
    method: str = "per_unit"

    def evaluate(self, run: Run) -> Finding:
        points = _trend_points(run, self.family, self.metric, self.method)
        rho, _ = _spearman(points)
        holds = not math.isnan(rho) and rho * self.sign > 0
        expected = "ρ > 0" if self.sign > 0 else "ρ < 0"
        return Finding(
            _describe_trend(points), holds, f"{expected} {'holds' if holds else 'fails'}"
        )


@dataclass(frozen=True)
class NoSignificantDecrease(FamilyCheck):
    """A metric does not decrease significantly with β (not ρ < 0 with p < SIGNIFICANCE)."""

    study: str
    family: str
    metric: str = "unit_pearson"
    method: str = "per_unit"

    def evaluate(self, run: Run) -> Finding:
        points = _trend_points(run, self.family, self.metric, self.method)
        rho, p = _spearman(points)
        decreases = not math.isnan(rho) and rho < 0 and p < SIGNIFICANCE
        why = f"{'a' if decreases else 'no'} decrease with ρ < 0 and p < {SIGNIFICANCE:g}"
        return Finding(_describe_trend(points), not decreases, why)


@dataclass(frozen=True)
class NearMaximum(FamilyCheck):
    """The mean attribution entropy at least NEAR_MAXIMUM of its maximum, log d_H."""

    study: str
    family: str
    metric: str = "attribution_entropy"
    method: str = "per_unit"

    def evaluate(self, run: Run) -> Finding:
        models = self.models(run)
        if not models:
            raise Missing(f"no {PAPER_DATASETS[self.family]} model in run {run.name}")
        shares, values, maxima = [], [], set()
        for model_id in models:
            rows = run.single(model_id, self.method, self.metric)
            if "detail_max_entropy" in rows and rows["detail_max_entropy"].notna().all():
                maximum = rows["detail_max_entropy"]
            else:
                latent_dim = run.model(model_id)["params"].get("latent_dim")
                if not latent_dim:
                    raise Missing(f"{model_id}: neither max_entropy nor latent_dim recorded")
                maximum = pd.Series(math.log(latent_dim), index=rows.index)
            shares.extend(rows["value"] / maximum)
            values.extend(rows["value"])
            maxima.update(round(float(m), 3) for m in maximum)
        share = sum(shares) / len(shares)
        holds = share >= NEAR_MAXIMUM
        maximum_text = ", ".join(f"{m:g}" for m in sorted(maxima))
        return Finding(
            f"mean entropy {fmt(sum(values) / len(values))} = {share:.0%} of log d_H = "
            f"{maximum_text} ({len(values)} VAEs)",
            holds,
            f"{share:.0%} {'≥' if holds else '<'} {NEAR_MAXIMUM:.0%}",
        )
