"""When each request should be sent: a gamma arrival process for a request rate.

Inter-arrival times are gamma distributed with shape `burstiness` and mean 1/rate, as in
vLLM's benchmark_serving: burstiness 1 is a Poisson process, below 1 burstier, above 1 steadier.
"""

from __future__ import annotations

import numpy as np


def arrival_times(requests: int, rate: float, burstiness: float = 1.0, seed: int = 0) -> np.ndarray:
    """Send offsets in seconds from the start of the run; the first request goes at 0."""
    rng = np.random.default_rng(seed)
    gaps = rng.gamma(shape=burstiness, scale=1.0 / (rate * burstiness), size=requests)
    gaps[0] = 0.0
    return np.cumsum(gaps)
