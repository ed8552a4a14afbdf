"""The time-budget planner, with a fake clock: calibration, the plan, the deadline guard, resume."""
import json

import pytest
import torch

from contraclust.errors import ConfigError
from contraclust.presets import build_config
from contraclust.training import Trainer
from contraclust.training.budget import BudgetKeeper, RunShape, evaluation_passes, parse_duration, steps_that_fit
from contraclust.training.budget_watch import BudgetWatch
from helpers import TINY
from test_trainer import small_data


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


@pytest.mark.parametrize("text,seconds", [("90s", 90), ("10m", 600), ("2h", 7200), ("1h30m", 5400), ("1.5h", 5400),
                                          ("600", 600), (" 5 min ", 300), ("2 hours", 7200), (45, 45), ("0.5m", 30)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["abc", "-5m", "0", "10x", "", "nan", "5m-3s", "m"])
def test_parse_duration_refuses_nonsense(text):
    with pytest.raises(ConfigError, match="duration|positive"):
        parse_duration(text)


def shape(**kw):
    values = dict(steps_per_epoch=10, max_epochs=1000, eval_every=2, evaluates=True, checkpoint_every=5,
                  checkpoint_seconds=0.0)
    values.update(kw)
    return RunShape(**values)


def test_steps_that_fit_counts_steps_evaluations_and_the_final_read_out():
    # 8 epochs of 10 steps at 1 s = 80 s; evaluations after epochs 2, 4, 6 and the final one: 4 x 5 s = 20 s.
    assert evaluation_passes(1, 80, shape()) == 4
    assert steps_that_fit(100.0, 0, 1.0, 5.0, shape()) == 80
    # a ninth epoch would add 10 steps and a fifth evaluation: 106 s > 100 s
    assert steps_that_fit(105.9, 0, 1.0, 5.0, shape()) == 80
    # without labels only the final read-out is an evaluation
    assert steps_that_fit(100.0, 0, 1.0, 5.0, shape(evaluates=False)) == 90
    # checkpoints count too: every 5 epochs and the last
    assert steps_that_fit(100.0, 0, 1.0, 5.0, shape(checkpoint_seconds=2.0)) == 70


def test_plan_keeps_whole_epochs_unless_that_wastes_a_tenth():
    # 1000 steps per epoch: 0.5 epoch fits, so the last (only) epoch stops early rather than overrun
    assert steps_that_fit(50.0, 0, 0.1, 0.0, shape(steps_per_epoch=1000, evaluates=False)) == 500
    # the plan never ends before the step it is made at
    assert steps_that_fit(-5.0, 37, 1.0, 1.0, shape()) == 38
    # max_epochs caps the plan
    assert steps_that_fit(1e9, 0, 1.0, 0.0, shape(max_epochs=3, evaluates=False)) == 30


def test_keeper_calibrates_after_warmup_and_plans_inside_the_budget():
    clock = FakeClock()
    keeper = BudgetKeeper(120.0, clock(), clock, warmup_steps=3, min_calibration_steps=5,
                          min_calibration_seconds=3.0, finish_seconds=2.0, min_warmup_seconds=0.5)
    clock.advance(4.0)  # loading data and building the model count
    steps = 0
    for seconds in [5.0, 1.0, 1.0] + [0.5] * 20:  # slow warm-up steps are not measured
        clock.advance(seconds)
        steps += 1
        if keeper.step_done():
            break
    assert steps == 3 + 6  # 5 steps are 2.5 s < 3 s: a sixth is measured
    plan = keeper.make_plan(steps, eval_seconds=1.0, shape=shape(evaluates=False))
    assert plan.steps_per_second == pytest.approx(2.0)
    elapsed = clock.now - keeper.started_at
    expected_end = elapsed + (plan.total_steps - steps) * 0.5 + 1.0 + keeper.finish_seconds
    assert plan.expected_seconds == pytest.approx(expected_end)
    assert expected_end <= 120.0 - (keeper.reserve - keeper.finish_seconds)
    assert 120.0 - expected_end < 0.1 * 120  # and it uses the budget: whole epochs of 5 s each
    assert "steps/s" in plan.describe() and "epochs" in plan.describe()


def test_guard_shortens_the_plan_when_the_machine_slows_down():
    clock = FakeClock()
    keeper = BudgetKeeper(200.0, clock(), clock, warmup_steps=1, min_calibration_steps=2,
                          min_calibration_seconds=1.0)
    run = shape(evaluates=False)
    step = 0
    while True:
        clock.advance(0.5)
        step += 1
        if keeper.step_done():
            break
    plan = keeper.make_plan(step, 0.0, run)
    planned = plan.total_steps
    for _ in range(10):  # ten steps at the measured speed: no change
        clock.advance(0.5)
        step += 1
    assert keeper.check(step, run) is None
    shorter = None
    while step < plan.total_steps:
        clock.advance(1.5)  # three times slower from here on
        step += 1
        if step % 10 == 0:
            shorter = keeper.check(step, run) or shorter
    assert shorter is not None and shorter < planned and plan.replans >= 1
    assert clock.now - keeper.started_at <= 200.0 - keeper.finish_seconds  # the files still fit


def test_guard_rides_out_a_brief_slowdown():
    clock = FakeClock()
    keeper = BudgetKeeper(600.0, clock(), clock, warmup_steps=1, min_calibration_steps=2,
                          min_calibration_seconds=1.0)
    run = shape(evaluates=False)
    step = 0
    while True:
        clock.advance(0.1)
        step += 1
        if keeper.step_done():
            break
    plan = keeper.make_plan(step, 0.0, run)
    planned = plan.total_steps
    while step < plan.total_steps:
        clock.advance(0.2 if 1000 <= step < 1100 else 0.1)  # 20 s at half the speed
        step += 1
        if step % 10 == 0:
            keeper.check(step, run)
    assert plan.total_steps >= 0.98 * planned  # what was cut for the slow stretch was given back
    assert clock.now - keeper.started_at <= 600.0 - keeper.finish_seconds


def test_guard_lengthens_a_pessimistic_plan_but_not_a_resumed_one():
    for resumed in (False, True):
        clock = FakeClock()
        keeper = BudgetKeeper(300.0, clock(), clock, warmup_steps=1, min_calibration_steps=2,
                              min_calibration_seconds=1.0)
        run = shape(evaluates=False)
        step = 0
        while True:
            clock.advance(0.2)  # calibrated at 0.2 s a step ...
            step += 1
            if keeper.step_done():
                break
        plan = keeper.make_plan(step, 0.0, run)
        planned = plan.total_steps
        if resumed:
            keeper.resume(plan, step, spent_seconds=0.0)
        while step < plan.total_steps:
            clock.advance(0.1)  # ... but the run goes twice as fast
            step += 1
            if step % 10 == 0:
                keeper.check(step, run)
        if resumed:
            assert plan.total_steps == planned
        else:
            assert plan.total_steps > 1.5 * planned
        assert clock.now - keeper.started_at <= 300.0 - keeper.finish_seconds


def budget_config(budget, **kw):
    return build_config("cc", "mnist5k-cpu", n_clusters=10, budget=budget, batch_size=64, seed=0,
                        overrides=TINY + ["train.progress=false", "train.eval_every=1", "train.checkpoint_every=1",
                                          "optim.schedule=cosine"] + kw.pop("overrides", []))


class TimedTrainer(Trainer):
    """Each training step takes ``step_seconds`` of fake time (the first one ``first_step_seconds`` more);
    everything else takes none."""

    step_seconds = 0.25
    first_step_seconds = 0.0

    def train_step(self, batch, step, partner=None, instance_only=False):
        self.clock.advance(self.step_seconds + (self.first_step_seconds if step == self.start_step else 0.0))
        return super().train_step(batch, step, partner, instance_only)


def test_trainer_plans_epochs_from_measured_speed_and_ends_the_cosine_there(tmp_path):
    clock = FakeClock()
    trainer = TimedTrainer(budget_config("40s"), small_data(), tmp_path / "run", "cpu", clock=clock)
    result = trainer.fit()
    plan = trainer.budget_plan
    assert plan is not None and plan.steps_per_second == pytest.approx(4.0)
    assert plan.total_steps % trainer.steps_per_epoch == 0 and result.epochs == plan.epochs
    assert clock.now - trainer.started_at <= 40.0
    assert trainer.schedule.total_steps == plan.total_steps
    assert trainer.lr_at(plan.total_steps - 1) < 0.01 * trainer.config.optim.lr  # the cosine ended at the last step
    assert [row["epoch"] for row in result.history] == list(range(1, plan.epochs + 1))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["budget_plan"]["total_steps"] == plan.total_steps


def test_epochs_win_over_a_budget():
    config = build_config("cc", "mnist5k-cpu", budget="10m", epochs=3)
    assert config.train.budget_seconds == 0 and config.train.epochs == 3
    with pytest.raises(ConfigError, match="duration"):
        build_config("cc", "mnist5k-cpu", budget="soon")


def test_resume_keeps_the_plan_of_the_run_it_resumes(tmp_path):
    clock = FakeClock()
    first = TimedTrainer(budget_config("40s"), small_data(), tmp_path / "run", "cpu", clock=clock)
    first.fit(on_epoch_end=lambda row: row["epoch"] == 2)  # killed after epoch 2's checkpoint
    plan = first.budget_plan.to_dict()

    later = FakeClock()
    later.advance(5000.0)
    second = TimedTrainer(budget_config("40s"), small_data(), tmp_path / "run", "cpu", clock=later)
    second.step_seconds = 0.01  # a much faster machine must not re-plan a longer run
    assert second.resume() and second.budget_plan.to_dict() == plan
    result = second.fit()
    assert result.epochs == first.budget_plan.epochs
    straight = TimedTrainer(budget_config("40s"), small_data(), tmp_path / "straight", "cpu", clock=FakeClock())
    straight.fit()
    # on the fake clock the same calibration makes the same plan, which both runs then follow alike
    assert straight.budget_plan.first_total_steps == plan["first_total_steps"]
    assert straight.budget_plan.to_dict() == second.budget_plan.to_dict()
    for key, value in straight.method.state_dict().items():  # so the resumed run equals the uninterrupted one
        assert torch.equal(value, second.method.state_dict()[key]), key


def test_a_compiling_first_step_is_counted_in_the_time_left_not_in_the_step_speed(tmp_path):
    """torch.compile compiles in the first step: C3's stage compiles its own model again inside its share."""
    clock = FakeClock()
    trainer = TimedTrainer(budget_config("40s"), small_data(), tmp_path / "run", "cpu", clock=clock)
    trainer.first_step_seconds = 12.0
    result = trainer.fit()
    plan = trainer.budget_plan
    assert plan.steps_per_second == pytest.approx(4.0)  # the warm-up steps, compilation among them, are not timed
    assert plan.planned_at_seconds >= 12.0 and clock.now - trainer.started_at <= 40.0
    assert result.wall_seconds <= 40.0


def test_the_evaluation_time_includes_the_methods_read_out(tmp_path):
    """CLC reads out with Sinkhorn-Knopp over the whole set: the planner's evaluation time must count it."""
    clock = FakeClock()
    trainer = TimedTrainer(build_config("clc", "mnist5k-cpu", n_clusters=10, budget="40s", batch_size=64, seed=0,
                                        overrides=TINY + ["train.progress=false"]), small_data(), None, "cpu",
                           clock=clock)
    readout = trainer.method.readout

    def slow_readout(probabilities):
        clock.advance(0.5)
        return readout(probabilities)

    trainer.method.readout = slow_readout
    batches = -(-len(trainer.data) // trainer.config.train.eval_batch_size)
    assert BudgetWatch(trainer).time_evaluation() >= 0.5 * batches


class CostlyTrainer(TimedTrainer):
    """Besides its steps, each evaluation batch costs ``eval_batch_seconds`` of fake time (so the planner's
    timing of one batch sees it too), each checkpoint ``checkpoint_write_seconds`` (ten times the planner's
    estimate for this small model) and the final files ``final_files_seconds``."""

    eval_batch_seconds = 0.05
    checkpoint_write_seconds = 0.5
    final_files_seconds = 2.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        view = self.augment.eval_view

        def costly_view(x):
            self.clock.advance(self.eval_batch_seconds)
            return view(x)

        self.augment.eval_view = costly_view


def test_evaluations_checkpoints_and_the_final_files_cost_time_and_the_run_still_ends_in_its_budget(tmp_path,
                                                                                                    monkeypatch):
    import contraclust.training.trainer as trainer_module

    clock = FakeClock()
    save, outputs = trainer_module.ckpt.save_checkpoint, trainer_module.write_run_outputs
    writes = []

    def slow_save(*args, **kwargs):
        clock.advance(CostlyTrainer.checkpoint_write_seconds)
        writes.append(clock.now)
        return save(*args, **kwargs)

    def slow_outputs(*args, **kwargs):
        clock.advance(CostlyTrainer.final_files_seconds)
        return outputs(*args, **kwargs)

    monkeypatch.setattr(trainer_module.ckpt, "save_checkpoint", slow_save)
    monkeypatch.setattr(trainer_module, "write_run_outputs", slow_outputs)
    trainer = CostlyTrainer(budget_config("40s"), small_data(), tmp_path / "run", "cpu", clock=clock)
    result = trainer.fit()
    spent = clock.now - trainer.started_at
    # a step is 0.25 s, an epoch 1 s of steps, and after it 0.05 s of evaluation and 0.5 s of checkpoint:
    # planned as if writes cost the 0.05 s estimate, the run would end about 13 s late
    assert len(writes) == result.epochs and spent <= 40.0, (spent, result.epochs)
    assert spent >= 40.0 - 2 * 6.0  # and the budget is used, but for the reserve and one epoch's rounding
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["wall_seconds"] <= 40.0
