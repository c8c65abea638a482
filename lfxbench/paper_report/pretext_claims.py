"""What the papers say about the pretext study (000 §4.2 Tables 1-2, 001 §4.1 Table 3):
do encoders trained on different pretext tasks rely on the same features and examples?
"""

from __future__ import annotations

from lfxbench.paper_report.checks import Claim
from lfxbench.paper_report.pretext_checks import (
    COMPARABLE,
    SHORT,
    STRONG,
    WEAK,
    PairBand,
    PairGroups,
    PairRange,
    PairValue,
)
from lfxbench.paper_report.protocols import PRETEXT

# 001 Table 3 (MNIST, 5 runs, avg ± std): (first, second) -> (mean, std).
TABLE_3A = {  # saliency: |label-free Gradient SHAP|
    ("reconstruction", "denoising"): (0.38, 0.02),
    ("reconstruction", "inpainting"): (0.33, 0.05),
    ("denoising", "inpainting"): (0.32, 0.02),
    ("reconstruction", "classification"): (0.43, 0.02),
    ("denoising", "classification"): (0.40, 0.01),
    ("inpainting", "classification"): (0.35, 0.04),
}
TABLE_3B = {  # example importance: label-free Deep-KNN
    ("reconstruction", "denoising"): (0.08, 0.04),
    ("reconstruction", "inpainting"): (0.13, 0.05),
    ("denoising", "inpainting"): (0.09, 0.01),
    ("reconstruction", "classification"): (0.07, 0.02),
    ("denoising", "classification"): (0.05, 0.02),
    ("inpainting", "classification"): (0.08, 0.02),
}


def pretext_claims() -> list[Claim]:
    claims = [
        Claim(
            "000 §4.2, Table 1",
            "saliency (label-free Gradient SHAP) Pearson between pretext tasks: moderate "
            "positive correlations",
            PairBand(
                "pretext",
                ("gradient_shap",),
                WEAK,
                STRONG,
                statement=f"every pair in [{WEAK:g}, {STRONG:g})",
            ),
            PRETEXT,
        ),
        Claim(
            "000 §4.2, Table 2",
            "example importance (label-free Deep-KNN) Pearson between pretext tasks: weak "
            "correlations",
            PairBand(
                "pretext", ("deep_knn",), -WEAK, WEAK, statement=f"every pair with |r| < {WEAK:g}"
            ),
            PRETEXT,
        ),
        Claim(
            "000 §4.2, Tables 1-2",
            "distinct pretext tasks do not yield interchangeable representations (both "
            "explanation types)",
            PairBand(
                "pretext",
                ("gradient_shap", "deep_knn"),
                -1.0,
                STRONG,
                statement=f"every pair below {STRONG:g}",
            ),
            PRETEXT,
        ),
        Claim(
            "000 §4.2, Table 1",
            "saliency: autoencoder–classifier correlations are comparable to "
            "autoencoder–autoencoder ones",
            PairGroups(
                "pretext",
                "gradient_shap",
                "comparable",
                statement=f"group means within {COMPARABLE:g}",
            ),
            PRETEXT,
        ),
        Claim(
            "000 §4.2, Table 2",
            "examples: autoencoder–classifier correlations are substantially lower than "
            "autoencoder–autoencoder ones",
            PairGroups(
                "pretext",
                "deep_knn",
                "lower",
                statement="every AE–classifier pair below every AE–AE pair",
            ),
            PRETEXT,
        ),
        Claim(
            "001 §4.1, Table 3a",
            "saliency Pearson ranges from .32 to .43 (moderate positive)",
            PairRange("pretext", "gradient_shap", 0.32, 0.43),
            PRETEXT,
        ),
        Claim(
            "001 §4.1, Table 3b",
            "example importance Pearson ranges from .05 to .13 (weak)",
            PairRange("pretext", "deep_knn", 0.05, 0.13),
            PRETEXT,
        ),
    ]
    for table, method, label in (
        (TABLE_3A, "gradient_shap", "3a saliency"),
        (TABLE_3B, "deep_knn", "3b examples"),
    ):
        for (first, second), (mean, std) in table.items():
            claims.append(
                Claim(
                    f"001 §4.1, Table {label}",
                    f"Pearson {SHORT[first]}–{SHORT[second]} = {mean:.2f} ± {std:.2f}",
                    PairValue("pretext", method, first, second, mean, std),
                    PRETEXT,
                )
            )
    claims.append(
        Claim(
            "001 §4.1, Table 3 (Claim 3)",
            "the representations of different pretext tasks are not interchangeable",
            PairBand(
                "pretext",
                ("gradient_shap", "deep_knn"),
                -1.0,
                STRONG,
                statement=f"every pair below {STRONG:g}",
            ),
            PRETEXT,
        )
    )
    return claims
