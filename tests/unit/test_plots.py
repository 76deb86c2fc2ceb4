import numpy as np
import pandas as pd

from psystock.plots import params_figure, sampled_params


def test_params_figure_draws_each_sampled_parameter_and_stars_the_best_trial():
    trials = pd.DataFrame(
        {
            "loss": [0.5, 0.4, np.inf, 0.45],
            "C": [0.001, 1.0, 10.0, 0.5],
            "solver": ["lbfgs", "saga", "saga", "lbfgs"],
            "max_iter": [100] * 4,
        }
    )
    assert sampled_params(trials, ["C", "solver", "max_iter"]) == ["C", "solver"]
    numeric, choice = params_figure(trials, ["C", "solver", "max_iter"], "t").axes
    assert numeric.get_xscale() == "log" and choice.get_xscale() == "linear"  # C spans three decades
    assert [t.get_text() for t in choice.get_xticklabels()] == ["lbfgs", "saga"]
    for ax, best_x in ((numeric, 1.0), (choice, 1)):  # the failed trial (infinite loss) is not drawn
        points, star = (np.asarray(c.get_offsets()) for c in ax.collections)
        assert len(points) == 3 and tuple(star[0]) == (best_x, 0.4)


def test_leaderboard_figure_shows_scores_around_zero_on_both_sides():
    from psystock.plots import leaderboard_figure

    board = pd.DataFrame({"family": ["logreg", "baseline"], "run_name": ["l", "b"], "cv_mcc_mean": [0.05, -0.04]})
    (ax,) = leaderboard_figure(board, "cv_mcc_mean").axes
    low, high = ax.get_xlim()
    assert low < -0.04 and 0.05 < high < 0.2  # not the unit interval, where both would be a hairline
