"""Spike detection on synthetic 5-minute series."""

import random

from crisis.reactions.spikes import Spike, detect_spike


def _steady(mean: int, n: int = 24, seed: int = 7) -> list[int]:
    rng = random.Random(seed)
    return [max(0, round(rng.gauss(mean, mean ** 0.5))) for _ in range(n)]


def test_no_spike_on_steady_traffic():
    history = _steady(20)
    for current in history[-6:]:
        assert detect_spike(history, current) is None
    # Walk a long steady series bucket by bucket: no alarm anywhere.
    series = _steady(15, n=200, seed=3)
    alarms = [i for i in range(3, len(series)) if detect_spike(series[:i], series[i])]
    assert alarms == []


def test_flat_traffic_with_zero_mad_is_not_a_spike_on_small_moves():
    assert detect_spike([10] * 12, 13) is None
    assert detect_spike([10] * 12, 16) is None  # 10 + 3 x sqrt(10) = 19.5
    assert detect_spike([10] * 12, 25) is not None


def test_spike_on_a_burst():
    history = _steady(12)
    spike = detect_spike(history, 60)
    assert isinstance(spike, Spike)
    assert spike.current == 60
    assert 8 <= spike.baseline <= 16
    assert spike.threshold < 60 and spike.ratio > 3 and spike.score > 3
    assert set(spike.as_dict()) == {"current", "baseline", "spread", "threshold", "ratio", "score"}


def test_nothing_on_tiny_numbers():
    assert detect_spike([0, 0, 1, 0, 0, 1, 0, 0], 3) is None  # below min_count
    assert detect_spike([0, 0, 0, 0], 4) is None
    assert detect_spike([0, 0, 0, 0], 6) is not None  # from silence to six is worth a look


def test_no_verdict_without_history():
    assert detect_spike([], 100) is None
    assert detect_spike([2, 3], 100) is None
    assert detect_spike([2, 3, 2], 100) is not None


def test_baseline_follows_the_recent_window():
    # An early quiet hour, then the incident grows to ~40 per bucket: 45 is normal by now.
    history = [2] * 12 + _steady(40, n=36)
    assert detect_spike(history, 45) is None
    assert detect_spike(history, 45, window=None) is None  # the median still sits in the busy part
    assert detect_spike(history, 120) is not None


def test_parameters():
    history = [10] * 12
    assert detect_spike(history, 17, k=2.0) is not None  # 10 + 2 x 3.16 = 16.3
    assert detect_spike(history, 25, min_count=30) is None
    assert detect_spike(history, 25, min_increase=20) is None
