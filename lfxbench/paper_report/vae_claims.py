"""What the papers say about the VAE study (000 §4.3 Fig. 6 and App. C.3 Fig. 8, 001 §4.1
Fig. 4): do disentangled VAEs' latent units attend to distinct parts of the image?
"""

from __future__ import annotations

from lfxbench.paper_report.checks import Claim
from lfxbench.paper_report.protocols import (
    VAE_DSPRITES,
    VAE_DSPRITES_001,
    VAE_MNIST,
    VAE_MNIST_001,
)
from lfxbench.paper_report.vae_checks import NearMaximum, NoSignificantDecrease, Trend


def vae_claims() -> list[Claim]:
    families = (
        ("mnist", "MNIST", VAE_MNIST, VAE_MNIST_001),
        ("dsprites", "dSprites", VAE_DSPRITES, VAE_DSPRITES_001),
    )
    claims = [
        Claim(
            "000 §4.3, Fig. 6 (MNIST)",
            "the unit Pearson correlation slightly decreases with β",
            Trend("vae", "mnist", "unit_pearson", -1),
            VAE_MNIST,
        ),
        Claim(
            "000 §4.3, Fig. 6 (dSprites)",
            "the unit Pearson correlation moderately increases with β",
            Trend("vae", "dsprites", "unit_pearson", +1),
            VAE_DSPRITES,
        ),
    ]
    for family, name, protocol, _ in families:
        claims.append(
            Claim(
                f"000 §4.3, Fig. 6 ({name})",
                "increasing β does not make latent units attend to distinct parts of the "
                "image (no significant decrease of the correlation)",
                NoSignificantDecrease("vae", family),
                protocol,
            )
        )
    for family, name, protocol, _ in families:
        claims.append(
            Claim(
                f"000 App. C.3, Fig. 8 ({name})",
                "the attribution entropy decreases as β (disentanglement) increases",
                Trend("vae", family, "attribution_entropy", -1),
                protocol,
            )
        )
    for family, name, protocol, _ in families:
        claims.append(
            Claim(
                f"000 App. C.3, Fig. 8 ({name})",
                "the entropies remain fairly close to their maximal value (several active "
                "units per pixel)",
                NearMaximum("vae", family),
                protocol,
            )
        )
    claims += [
        Claim(
            "001 §4.1, Fig. 4 (MNIST)",
            "a slight decrease of the unit Pearson correlation with β",
            Trend("vae", "mnist", "unit_pearson", -1),
            VAE_MNIST_001,
        ),
        Claim(
            "001 §4.1, Fig. 4 (dSprites)",
            "a moderate increase of the unit Pearson correlation with β",
            Trend("vae", "dsprites", "unit_pearson", +1),
            VAE_DSPRITES_001,
        ),
    ]
    for family, name, _, protocol in families:
        claims.append(
            Claim(
                f"001 §4.1, Fig. 4 ({name})",
                "increasing β does not make latent units attend to specific parts of the "
                "image (same conclusion as 000)",
                NoSignificantDecrease("vae", family),
                protocol,
            )
        )
    return claims
