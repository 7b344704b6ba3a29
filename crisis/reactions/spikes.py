"""Volume spikes: is this 5-minute bucket far above what this incident has been seeing?

``detect_spike(counts_per_5min, current)`` compares the current bucket with the incident's own
recent history (the buckets before it, zero buckets included), robustly:

- **baseline** = median of the last ``window`` buckets (default 36 = three hours), so one earlier
  burst does not lift the bar and the baseline follows a crisis that slowly grows or calms down;
- **spread** = the larger of 1.4826 x MAD (the median absolute deviation, scaled to match a
  standard deviation) and the Poisson noise floor sqrt(max(baseline, 1)). The floor matters: on
  perfectly steady traffic (10, 10, 10, ...) the MAD is 0 and 11 would otherwise be "a spike";
- **threshold** = baseline + ``k`` x spread (k = 3 by default).

A spike needs all of: at least ``min_history`` earlier buckets (no verdict on the first minutes of
an incident, when every bucket is "more than before"), ``current`` above the threshold, at least
``min_count`` reactions in the bucket and at least ``min_increase`` more than the baseline (both
keep tiny numbers quiet: 0, 0, 1, 0 then 3 is not news for a crisis team).

The same function works for the incident total, for one cluster (a theme taking off), or for one
category (rumours surging); ``Clusterer.series()`` gives the counts.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

MAD_SCALE = 1.4826  # MAD -> standard deviation for normally distributed data


@dataclass(frozen=True)
class Spike:
    """A detected spike and the numbers behind it (for the alert text and the audit trail)."""

    current: int
    baseline: float  # median of the history window
    spread: float  # max(1.4826 x MAD, sqrt(baseline))
    threshold: float  # baseline + k x spread
    ratio: float  # current / max(baseline, 1)
    score: float  # (current - baseline) / spread: how many spreads above normal

    def as_dict(self) -> dict:
        return {"current": self.current, "baseline": self.baseline, "spread": self.spread,
                "threshold": self.threshold, "ratio": self.ratio, "score": self.score}


def detect_spike(counts_per_5min: Sequence[int], current: int, *, k: float = 3.0, min_count: int = 5,
                 min_increase: int = 3, min_history: int = 3, window: int | None = 36) -> Spike | None:
    """A ``Spike`` when ``current`` stands out from ``counts_per_5min`` (the buckets before it,
    oldest first), else None. See the module docstring for the rule and its defaults."""
    history = list(counts_per_5min)[-window:] if window else list(counts_per_5min)
    if len(history) < min_history:
        return None
    baseline = float(statistics.median(history))
    mad = float(statistics.median(abs(x - baseline) for x in history))
    spread = max(MAD_SCALE * mad, math.sqrt(max(baseline, 1.0)))
    threshold = baseline + k * spread
    if current < min_count or current - baseline < min_increase or current <= threshold:
        return None
    return Spike(current=int(current), baseline=round(baseline, 2), spread=round(spread, 2),
                 threshold=round(threshold, 2), ratio=round(current / max(baseline, 1.0), 2),
                 score=round((current - baseline) / spread, 2))
