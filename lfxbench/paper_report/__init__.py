"""``lfxbench report paper``: the label-free XAI paper's published claims against our runs.

Two papers are checked. **000**: Crabbé & van der Schaar, "Label-Free Explainability for
Unsupervised Models", ICML 2022. **001**: Garcarz et al., "[Re] Reproducibility Study:
Label-Free Explainability for Unsupervised Models", ReScience C 9.2, 2023. Every claim or
number they publish that our suites can test is one :class:`~.checks.Claim` in
:data:`.claims.CLAIMS`: where it is printed, what it says (typed from the papers' text)
and how to test it. What fills the other columns (our value with its spread over seeds,
the setting difference and the verdict) is computed from the run directories, never typed.

A run is recognised by the suite name in its ``run.json`` (:data:`.runs.STUDIES`):
``paper`` / ``paper_smoke`` (000 section 4.1), ``pretext`` / ``pretext_smoke`` (section
4.2), ``vae`` / ``vae_smoke`` (section 4.3) and ``roar`` / ``roar_smoke`` (Appendix C.1).
A claim whose run, model or method is not given is "not comparable" and says what is
missing.

Verdict rules and tolerances
----------------------------
(The constants live with their rules: ``checks``, ``pretext_checks`` and ``vae_checks``.)

* Orderings ("A shifts the latent more than B", "top-M above bottom-M") are judged on the
  means over seeds; where 2+ seeds exist the row also says on how many seeds the same
  ordering holds. Ties do not count as "above".
* "Rises sharply, then decelerates": the latent-shift curve lies above its chord, i.e. its
  normalised area (the metric's value) exceeds :data:`.checks.CHORD_AREA` = 0.5.
* Top-M versus bottom-M similarity rates are compared at every selected fraction M below
  50 % (larger top and bottom sets overlap).
* "Usually outperform" (representation- against loss-based): the mean of one group's
  method means exceeds the other's.
* Correlation bands (the papers' words): weak ``|r| <`` ``WEAK`` (0.3), moderate
  ``0.3 <= r <`` ``STRONG`` (0.7); "not interchangeable": every pair below 0.7.
  "Comparable" groups of pairs: means within ``COMPARABLE`` (0.1). "Substantially
  lower": every pair of the lower group below every pair of the other.
* Published numbers with a std (001 Table 3): reproduced when ``|ours - published| <=
  max(0.02, 2 sqrt(std_published^2 + std_ours^2))``
  (:func:`.pretext_checks.number_tolerance`; 0.02: the table prints two decimals).
  Published ranges: every pair inside the range widened by ``RANGE_SLACK`` (0.05, about
  twice the table's typical std). Values read off a figure ("around 0.17"): within
  :data:`.checks.FIGURE_SLACK` (0.1).
* Trends with beta: the sign of Spearman's rho pooled over both VAE types and every seed
  of a dataset (000 reports one rho per dataset). "Does not decrease significantly": not
  (rho < 0 and p < 0.05). "Close to the maximal entropy": the mean entropy is at least
  :data:`.vae_checks.NEAR_MAXIMUM` (80 %) of log d_H.

Comparability: a claim measured on a stand-in for the paper's data (procedural heartbeats
for ECG5000, photo crops for CIFAR-10) is "not comparable", with what our run shows. A
published *number* further needs the paper's full dataset (with its labels and its
train / test split: ECG5000's normal beats for training, or its random 4,000 / 1,000
split), its epoch budget and (example importance) its corpus size; otherwise it is "not
comparable" and ours is still printed. Real subsets (the MNIST 5k subset) and re-rendered
dSprites keep orderings comparable. The setting difference (:mod:`.protocols`) names every
departure, a re-drawn split and a model's own example protocol included.

The package: :mod:`.runs` (run directories), :mod:`.protocols` (the papers' settings and
the setting difference), :mod:`.checks`, :mod:`.pretext_checks` and :mod:`.vae_checks`
(the verdict rules), :mod:`.claims`, :mod:`.pretext_claims` and :mod:`.vae_claims` (what
the papers say, where); this module judges every claim and writes the table.

000's Tables 1-2 values and its Spearman coefficients were lost when its text was
extracted (only the wording survives), so those claims are encoded by their wording.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lfxbench.paper_report.checks import Claim
from lfxbench.paper_report.claims import CLAIMS
from lfxbench.paper_report.protocols import not_comparable_reason, setting_difference
from lfxbench.paper_report.runs import STUDIES, Missing, Run, load_runs
from lfxbench.storage import atomic_write_text

DEFAULT_OUTPUT = Path("leaderboard/paper_vs_ours.md")


@dataclass
class Row:
    source: str
    claim: str
    ours: str
    setting: str
    verdict: str
    outcome: str = "not comparable"  # or "reproduced", "not reproduced"


def judge(claim: Claim, runs: dict[str, Run]) -> Row:
    """One claim against the runs: our value, the setting difference and the verdict."""
    check = claim.check
    run = runs.get(check.study)
    if run is None:
        return Row(
            claim.source, claim.text, "—", "—", f"not comparable: run {check.study} not given"
        )
    try:
        models = check.models(run)
        if not models:
            raise Missing(f"no model of this claim in run {run.name}")
        for model_id in models:
            run.model(model_id)
        finding = check.evaluate(run)
    except Missing as missing:
        return Row(claim.source, claim.text, "—", "—", f"not comparable: {missing}")
    setting = setting_difference(run, models, claim.protocol, check.methods())
    reason = not_comparable_reason(run, models, claim.protocol, check.numeric)
    if reason is not None:
        on_ours = "holds" if finding.holds else "fails"
        verdict = f"not comparable: {reason} (on our run it {on_ours}: {finding.why})"
        return Row(claim.source, claim.text, finding.ours, setting, verdict)
    outcome = "reproduced" if finding.holds else "not reproduced"
    return Row(
        claim.source, claim.text, finding.ours, setting, f"{outcome}: {finding.why}", outcome
    )


def build(runs: dict[str, Run], claims: Sequence[Claim] = CLAIMS) -> list[Row]:
    return [judge(claim, runs) for claim in claims]


def summary(rows: Sequence[Row]) -> str:
    counts = {
        o: sum(r.outcome == o for r in rows)
        for o in ("reproduced", "not reproduced", "not comparable")
    }
    return (
        f"{len(rows)} claims: {counts['reproduced']} reproduced, "
        f"{counts['not reproduced']} not reproduced, {counts['not comparable']} not comparable"
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(rows: Sequence[Row], runs: dict[str, Run]) -> str:
    lines = [
        "# The label-free XAI paper and its reproduction against our runs",
        "",
        "000: Crabbé & van der Schaar, *Label-Free Explainability for Unsupervised Models*, "
        "ICML 2022. 001: Garcarz et al., *[Re] Reproducibility Study: Label-Free "
        "Explainability for Unsupervised Models*, ReScience C 9.2, 2023.",
        "",
        "Written by `lfxbench report paper`: the claims are typed from the papers; ours, the "
        "setting difference (paper → ours) and the verdict are computed from these runs "
        "(verdict rules and tolerances: `lfxbench/paper_report/__init__.py`):",
        "",
    ]
    for study in dict.fromkeys(STUDIES.values()):
        run = runs.get(study)
        if run is None:
            lines.append(f"- {study}: not given")
            continue
        environment = run.results.get("device_name", pd.Series(["?"])).iloc[0]
        version = run.results.get("lfxbench_version", pd.Series(["?"])).iloc[0]
        lines.append(
            f"- {study}: `{run.path}` (suite {run.name}, {len(run.seeds)} seed(s), "
            f"lfxbench {version}, {environment})"
        )
    lines += [
        "",
        "| source | claim | ours | setting difference | verdict |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        cells = (row.source, row.claim, row.ours, row.setting, row.verdict)
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines += ["", summary(rows) + ".", ""]
    return "\n".join(lines)


def write_report(run_dirs: Sequence[Path], output: Path = DEFAULT_OUTPUT) -> str:
    """Read the run directories, write the Markdown table to ``output``; the verdict counts."""
    runs = load_runs(run_dirs)
    rows = build(runs)
    atomic_write_text(Path(output), render(rows, runs))
    return summary(rows)
