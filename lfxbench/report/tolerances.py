"""What ``lfxbench compare`` counts as a change: a suite's ``compare:`` section.

Apart from the comparison itself (pandas, scipy), so that the suite schema and the command
line's flags can name them without importing the numeric stack.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Tolerances(BaseModel):
    """How large a change must be to count. A suite may set them under ``compare:``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    quality_rtol: float = Field(0.05, ge=0, description="relative to the baseline value")
    quality_atol: float = Field(1e-6, ge=0, description="absolute floor")
    spread_factor: float = Field(1.0, ge=0, description="x the larger seed-to-seed std")
    runtime_threshold: float = Field(
        2.0, gt=1, description="fail beyond this calibrated slowdown (on every seed)"
    )
    runtime_floor_seconds: float = Field(
        0.1, ge=0, description="cells faster than this on both sides are not judged"
    )
    runtime_noise_quantile: float = Field(
        0.1,
        ge=0,
        le=0.5,
        description="q: the threshold rises to the machine's noise, the "
        "(1-q)/q quantile ratio of either run's calibration timings (0.5: off)",
    )
