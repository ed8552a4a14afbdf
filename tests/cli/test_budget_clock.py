"""Time budgets on the machine's own clock: ``fit --budget`` ends, its report included, inside the budget,
and metrics.json's ``wall_seconds`` is the whole run's (both stages of the default job, the report).

The allowances are what lies outside the command's own clock: in this process nothing (the clock starts
when ``main`` is called; 0.25 s for the test's own timing), and for a process the moments before the
kernel has created it and after it has ended (0.5 s): its clock starts at the process's start, so the
interpreter's start-up and the imports are inside the budget.

On a machine too slow for the budget (the C3 stage's shortest run, a step, its read-out and the files,
then does not fit its 15% share) the run says so before it trains, naming the end it will reach instead:
a run may end past its budget only where it said so, and then not past the end it gave."""
import json
import re
import time


from helpers import digit_folder, run_cli

IN_PROCESS_ALLOWANCE = 0.25
PROCESS_ALLOWANCE = 0.5
BUDGET = 15.0


def promised_end(stderr: str) -> float:
    """The budget, or where the run said that it cannot be met, the latest end it gave instead."""
    ends = re.findall(r"time budget of 15 s cannot be met: .* ends after (\d+) s", stderr)
    return max([BUDGET] + [float(end) for end in ends])


def assert_report_written_or_skipped_in_one_line(run, stderr: str) -> None:
    """The report is written, or (a slow or busy machine, where what is left of the budget cannot hold the
    smallest report) skipped with the one line that says so and how to write it later."""
    skipped = [line for line in stderr.splitlines() if line.startswith("report: skipped: ")]
    if skipped:
        assert not (run / "report.html").exists() and len(skipped) == 1, stderr
        assert skipped[0].endswith(f"`contraclust report {run}` writes it"), stderr
    else:
        assert (run / "report.html").exists(), stderr


def test_the_default_job_on_digits_ends_inside_its_budget_report_included(tmp_path):
    run = tmp_path / "run"
    began = time.monotonic()
    fit = run_cli("fit", "--data", "digits", "-k", "10", "--budget", f"{BUDGET:g}s", "--out", str(run), "--device",
                  "cpu", "--no-progress")
    elapsed = time.monotonic() - began
    assert fit.returncode == 0, fit.stderr
    plans = [line for line in fit.stderr.splitlines() if line.startswith("time budget ") and ": measured" in line]
    assert len(plans) == 2, fit.stderr  # the CC stage (85% of the budget, or less), then the C3 stage (the rest)
    assert plans[0].startswith("time budget 13 s") or plans[0].endswith(
        "(its share, 13 s, shortened so that the stage after it fits its shortest run)"), plans[0]
    assert plans[1].startswith("time budget 15 s") and plans[1].endswith("(speeds measured by the stage before)")
    assert (run / "report.html").exists() and (run / "cc-stage" / "metrics.json").exists()
    assert BUDGET / 2 <= elapsed <= promised_end(fit.stderr) + IN_PROCESS_ALLOWANCE, fit.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["budget_plan"]["budget_seconds"] == BUDGET
    assert json.loads((run / "cc-stage" / "metrics.json").read_text())["budget_plan"]["budget_seconds"] <= \
        BUDGET * 0.85 + 1e-9
    assert elapsed - 0.5 <= metrics["wall_seconds"] <= elapsed  # the whole run: both stages and the report


def test_a_fit_process_on_an_image_folder_ends_inside_its_budget_report_included(tmp_path):
    folder = digit_folder(tmp_path / "digits", 400)
    run = tmp_path / "run"
    began = time.monotonic()
    fit = run_cli("fit", "--data", str(folder), "-k", "10", "--budget", f"{BUDGET:g}s", "--out", str(run),
                  "--device", "cpu", "--no-progress", process=True)
    elapsed = time.monotonic() - began
    assert fit.returncode == 0, fit.stderr
    assert_report_written_or_skipped_in_one_line(run, fit.stderr)
    assert BUDGET / 2 <= elapsed <= promised_end(fit.stderr) + PROCESS_ALLOWANCE, fit.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert elapsed - 1.0 <= metrics["wall_seconds"] <= elapsed  # counted from the process's start
