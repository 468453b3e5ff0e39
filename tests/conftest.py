import matplotlib
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

matplotlib.use("Agg")

# "ci": reproducible (derandomized) and without per-example deadlines, which a shared
# 2-core machine would trip at random. "dev" explores new examples on every run.
settings.register_profile("ci", deadline=None, derandomize=True, max_examples=60,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, max_examples=60)
settings.load_profile("dev")


@pytest.fixture
def rng():
    return np.random.default_rng(0)
