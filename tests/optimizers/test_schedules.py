import numpy as np
import pytest

from danet_keras.optimizers.schedules import PolyDecay


def test_poly_formula_and_clamp_after_the_end():
    schedule = PolyDecay(0.01, 100, power=0.9, end_learning_rate=1e-4)
    for step in (0, 1, 50, 99, 100, 150):
        t = min(step, 100) / 100
        expected = (0.01 - 1e-4) * (1 - t) ** 0.9 + 1e-4
        # float32 power of a float32 fraction vs float64: a few eps.
        np.testing.assert_allclose(float(schedule(step)), expected, rtol=1e-5)


def test_linear_warmup_multiplies_the_decay():
    schedule = PolyDecay(0.1, 100, warmup_steps=10, warmup_start_factor=0.1)
    poly = lambda step: 0.1 * (1 - step / 100) ** 0.9  # noqa: E731
    # float32 power of a float32 fraction vs float64: a few eps.
    np.testing.assert_allclose(float(schedule(0)), 0.1 * poly(0), rtol=1e-5)
    # float32 power of a float32 fraction vs float64: a few eps.
    np.testing.assert_allclose(float(schedule(5)), (0.1 + 0.9 * 0.5) * poly(5), rtol=1e-5)
    # float32 power of a float32 fraction vs float64: a few eps.
    np.testing.assert_allclose(float(schedule(10)), poly(10), rtol=1e-5)
    # float32 power of a float32 fraction vs float64: a few eps.
    np.testing.assert_allclose(float(schedule(40)), poly(40), rtol=1e-5)


def test_config_round_trip():
    schedule = PolyDecay(0.01, 1000, power=1.0, warmup_steps=5)
    assert PolyDecay.from_config(schedule.get_config()).get_config() == schedule.get_config()


@pytest.mark.parametrize(
    "kwargs",
    [{"total_steps": 0}, {"total_steps": 10, "warmup_steps": 10}, {"warmup_steps": -1}],
)
def test_bad_steps(kwargs):
    with pytest.raises(ValueError):
        PolyDecay(0.01, **kwargs)


def test_a_schedule_without_a_length_refuses_until_it_is_set():
    schedule = PolyDecay(0.01, warmup_steps=5)
    with pytest.raises(ValueError, match="no length yet.*total_steps"):
        schedule(0)
    assert PolyDecay.from_config(schedule.get_config()).total_steps is None
    with pytest.raises(ValueError, match="warmup_steps"):
        schedule.set_total_steps(5)
    schedule.set_total_steps(100)
    np.testing.assert_allclose(float(schedule(100)), 0.0)
