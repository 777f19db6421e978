"""The convergence benchmark's table (fastinit.benchsuite.convergence.summarise and markdown):
what its columns count, from stored rows alone (no training here)."""
import math

from fastinit.benchsuite import convergence


def _row(seed, final, diverged=False, dataset="digits"):
    """A stored run as Store.rows gives it, for the summary alone: 2 epochs, its curves end
    at ``final``; a diverged one's loss is missing from its bad step on."""
    metric = "test_acc" if dataset == "digits" else "test_loss"
    other = "test_loss" if dataset == "digits" else "test_acc"
    return {"dataset": dataset, "activation": "relu", "depth": 2, "lr": 0.02, "seed": seed,
            "scheme": "lecun_normal", "scheme_params": {}, "epochs": 2, "time_s": 0.2,
            "diverged": int(diverged), "status": "diverged" if diverged else "done",
            "curves": {metric: [0.1, 0.5, final],
                       other: [2.3, None, None] if diverged else [2.3, 1.0, 0.5]}}


def test_diverged_runs_are_counted_apart_from_the_final_mean():
    """A diverged run keeps the test accuracy of its weights from before the bad step (0.09
    at a large lr on digits): the table averaged it with the trained runs' 0.95, so 'final'
    read 0.6633 for two trained seeds and one diverged. Now final is over the runs that
    trained (the diverged one counted in its diverged column), as fastinit report's table."""
    rows = [_row(0, 0.95), _row(1, 0.95), _row(2, 0.09, diverged=True)]
    (s,) = convergence.summarise(rows, None)
    assert (s["runs"], s["reached"], s["diverged"]) == (3, 2, 1)
    assert s["final"] == 0.95
    (line,) = convergence.markdown([s]).splitlines()[2:]
    assert line.split(" | ")[-2:] == ["0.9500", "1 |"]
    (alone,) = convergence.summarise([_row(2, 0.09, diverged=True)], None)
    assert math.isnan(alone["final"]) and alone["diverged"] == 1
    (line,) = convergence.markdown([alone]).splitlines()[2:]
    assert line.split(" | ")[-2:] == ["-", "1 |"]       # no run trained: no final value
