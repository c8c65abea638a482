"""What the two papers say, and where: every published claim or number our suites can
test, as a :class:`~lfxbench.paper_report.checks.Claim` typed from the papers' text, with
the check that tests it and the paper's setting (:mod:`.protocols`) it was made in.

This module holds the feature- and example-consistency claims (000 §4.1, 001 §4.1 Figs.
1-2) and ROAR's (000 App. C.1, 001 App. A.3); the pretext study's are in
:mod:`.pretext_claims`, the VAE study's in :mod:`.vae_claims`. :data:`CLAIMS`: all of them.
"""

from __future__ import annotations

from lfxbench.paper_report.checks import (
    AllOf,
    Best,
    Claim,
    GroupOrder,
    PeakNear,
    Threshold,
    TopAboveBottom,
    Versus,
)
from lfxbench.paper_report.pretext_claims import pretext_claims
from lfxbench.paper_report.protocols import (
    ECG_EXAMPLES,
    ECG_FEATURES,
    MNIST_DAE,
    MNIST_DAE_EXAMPLES,
    ROAR,
    SIMCLR,
    SIMCLR_EXAMPLES,
)
from lfxbench.paper_report.vae_claims import vae_claims

FEATURE_METHODS = ("saliency", "integrated_gradients", "gradient_shap", "deeplift")
REPRESENTATION_METHODS = ("deep_knn", "simplex")
LOSS_METHODS = ("tracin", "influence_functions")


def _feature_claims() -> list[Claim]:
    claims = []
    everyone = tuple((m, True) for m in FEATURE_METHODS)
    for model, name, protocol in (
        ("mnist_dae", "MNIST", MNIST_DAE),
        ("ecg_features", "ECG5000", ECG_FEATURES),
        ("simclr", "CIFAR-10", SIMCLR),
    ):
        source = f"000 §4.1, Fig. 2 ({name})"
        claims += [
            Claim(
                source,
                "the latent shift increases sharply on the few most important features, "
                "then decelerates",
                Threshold(
                    "paper",
                    "latent_shift",
                    model,
                    everyone,
                    statement="every method's curve above its chord",
                ),
                protocol,
            ),
            Claim(
                source,
                "masking by label-free importance shifts the latent significantly more than "
                "masking random features",
                Versus(
                    "paper",
                    "latent_shift",
                    model,
                    "random",
                    everyone,
                    statement="every method above random",
                ),
                protocol,
            ),
            Claim(
                source,
                "label-free Integrated Gradients outperform other methods for each model",
                Best(
                    "paper",
                    "latent_shift",
                    model,
                    "integrated_gradients",
                    statement="integrated_gradients above every other method",
                ),
                protocol,
            ),
        ]
    return claims


def _example_claims() -> list[Claim]:
    claims = []
    for model, name, methods, protocol in (
        ("mnist_dae", "MNIST", (*REPRESENTATION_METHODS, *LOSS_METHODS), MNIST_DAE_EXAMPLES),
        ("ecg_examples", "ECG5000", (*REPRESENTATION_METHODS, *LOSS_METHODS), ECG_EXAMPLES),
        ("simclr", "CIFAR-10", REPRESENTATION_METHODS, SIMCLR_EXAMPLES),
    ):
        claims.append(
            Claim(
                f"000 §4.1, Fig. 3 ({name})",
                "for every example importance method the similarity rate is substantially "
                "higher among the most important examples than among the least important",
                TopAboveBottom("paper", model, methods),
                protocol,
            )
        )
        if set(LOSS_METHODS) <= set(methods):
            claims.append(
                Claim(
                    f"000 §4.1, Fig. 3 ({name})",
                    "representation-based methods (DKNN, SimplEx) usually outperform "
                    "loss-based ones (TracIn, Influence Functions)",
                    GroupOrder(
                        "paper",
                        "similarity_rate",
                        model,
                        REPRESENTATION_METHODS,
                        LOSS_METHODS,
                        statement="representation-based group mean above the loss-based one",
                    ),
                    protocol,
                )
            )
    return claims


def _reproduction_consistency_claims() -> list[Claim]:
    claims = []
    everyone = tuple((m, True) for m in FEATURE_METHODS)
    for model, name, protocol in (
        ("mnist_dae", "MNIST", MNIST_DAE),
        ("ecg_features", "ECG5000", ECG_FEATURES),
    ):
        claims.append(
            Claim(
                f"001 §4.1, Fig. 1 ({name})",
                "matches 000: the shift rises fast then decelerates, and every method beats "
                "random masking",
                AllOf(
                    "paper",
                    (
                        Threshold("paper", "latent_shift", model, everyone),
                        Versus("paper", "latent_shift", model, "random", everyone),
                    ),
                    statement="every curve above its chord and above random",
                ),
                protocol,
            )
        )
    only_ig = (("integrated_gradients", True), ("gradient_shap", False), ("saliency", False))
    claims += [
        Claim(
            "001 §4.1, Fig. 1 (CIFAR-10)",
            "the sharp-rise-then-deceleration holds only for Integrated Gradients; Gradient "
            "SHAP and Saliency show the opposite",
            Threshold(
                "paper",
                "latent_shift",
                "simclr",
                only_ig,
                statement="only integrated_gradients above its chord",
            ),
            SIMCLR,
        ),
        Claim(
            "001 §4.1, Fig. 1 (CIFAR-10)",
            "only Integrated Gradients shifts the latent more than random masking",
            Versus(
                "paper",
                "latent_shift",
                "simclr",
                "random",
                only_ig,
                statement="only integrated_gradients above random",
            ),
            SIMCLR,
        ),
    ]
    for model, name, protocol in (
        ("mnist_dae", "MNIST", MNIST_DAE_EXAMPLES),
        ("ecg_examples", "ECG5000", ECG_EXAMPLES),
    ):
        claims.append(
            Claim(
                f"001 §4.1, Fig. 2 ({name})",
                "matches 000: most important examples share the label more than the least "
                "important",
                TopAboveBottom("paper", model, (*REPRESENTATION_METHODS, *LOSS_METHODS)),
                protocol,
            )
        )
    claims += [
        Claim(
            "001 §4.1, Fig. 2 (CIFAR-10; reading 000 Fig. 3)",
            "in 000 the highest similarity rate on CIFAR-10 is around 0.17",
            PeakNear("paper", "simclr", REPRESENTATION_METHODS, 0.17),
            SIMCLR_EXAMPLES,
        ),
        Claim(
            "001 §4.1, Fig. 2 (CIFAR-10)",
            "the similarity rate on CIFAR-10 peaks at 0.5 (same trend as 000, another scale)",
            PeakNear("paper", "simclr", REPRESENTATION_METHODS, 0.5),
            SIMCLR_EXAMPLES,
        ),
    ]
    return claims


def _roar_claims() -> list[Claim]:
    methods = tuple((m, True) for m in ("saliency", "integrated_gradients", "gradient_shap"))
    check = Versus(
        "roar", "roar", "mnist_ae", "random", methods, statement="every method above random"
    )
    return [
        Claim(
            "000 App. C.1, Fig. 7",
            "removing the features label-free methods rank highest increases the retrained "
            "model's test loss more than removing random ones",
            check,
            ROAR,
        ),
        Claim("001 App. A.3, Fig. 9", "ROAR: a similar trend to 000's", check, ROAR),
    ]


CLAIMS: tuple[Claim, ...] = (
    *_feature_claims(),
    *_example_claims(),
    *_reproduction_consistency_claims(),
    *pretext_claims(),
    *vae_claims(),
    *_roar_claims(),
)
