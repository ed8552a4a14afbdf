import math

import pytest

from contraclust.training.schedule import LearningRateSchedule


def test_warmup_then_cosine_to_the_floor():
    schedule = LearningRateSchedule(1.0, 100, warmup_steps=10, kind="cosine", min_lr_ratio=0.1)
    assert schedule.at(0) == pytest.approx(0.1)
    assert schedule.at(9) == pytest.approx(1.0)
    assert schedule.at(10) == pytest.approx(1.0)
    assert schedule.at(55) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert schedule.at(100) == pytest.approx(0.1)


def test_refit_continues_from_where_the_cosine_stands_and_ends_whole():
    schedule = LearningRateSchedule(1.0, 1000, warmup_steps=0, kind="cosine")
    before = schedule.at(300)
    schedule.refit(600, 300)
    assert schedule.at(300) == pytest.approx(before)  # no jump
    assert schedule.at(600) == pytest.approx(0.0, abs=1e-12)  # ends at the floor on the new last step
    lrs = [schedule.at(s) for s in range(300, 601)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))  # still decreasing
    schedule.refit(450, 400)  # a second shortening composes
    assert schedule.at(450) == pytest.approx(0.0, abs=1e-12)


def test_refit_during_warmup_only_moves_the_end():
    schedule = LearningRateSchedule(1.0, 10_000, warmup_steps=50, kind="cosine")
    schedule.refit(500, 20)
    assert schedule.anchor_step == 0 and schedule.at(50) == pytest.approx(1.0) and schedule.at(500) < 1e-9


def test_constant_schedule_ignores_the_end():
    schedule = LearningRateSchedule(0.3, 100)
    schedule.refit(10, 5)
    assert schedule.at(7) == 0.3 and LearningRateSchedule(**schedule.state()) == schedule
