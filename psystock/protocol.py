"""How every model and baseline is judged: choices on the past, the holdout scored once, with intervals.

With ``split=chronological`` the first ``1 - test_size`` of the rows are the
development period and the rest the holdout. A candidate (a model family
with its parameters, or a naive baseline) is scored by walk-forward
cross-validation on the development period, the score every choice is made
by; then it is fit on the whole development period and scored on the
holdout, with a block-bootstrap interval and a backtest, for the record and
for the registry gate, which alone judges by the holdout.

With ``split=random`` the reference protocol holds: a stratified shuffle,
stratified folds on the training split, and choices by the test score.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from psystock import backtest, bootstrap, names, scores
from psystock.backtest import Backtest
from psystock.bootstrap import Interval
from psystock.entry_points import StepArgs
from psystock.evaluation import TrainTest, cv_folds, split_dataset
from psystock.features import CLOSE_TO_CLOSE, OPEN_TO_CLOSE, FeatureSet
from psystock.validation import (
    Protocol,
    Split,
    check_backtest,
    check_bootstrap,
    check_cv_folds,
    check_seed,
    check_split,
    ranked_by,
)

log = logging.getLogger("psystock.protocol")

UP_RATE = "test_up_rate"  # a fact of the holdout, not a score


@dataclass(frozen=True, kw_only=True)
class Settings(Protocol):
    """The protocol's parameters, checked: invalid settings cannot be built."""

    def __post_init__(self) -> None:
        check_split(self.split, self.test_size)
        check_seed(self.seed)
        check_cv_folds(self.cv_folds)
        scores.score(self.metric)
        check_bootstrap(self.confidence, self.block_length)
        check_backtest(self.strategy, self.cost_bps)

    @property
    def chooses_on_cv(self) -> bool:
        """Chronological: every choice by cross-validation on the development period.
        Random (the reference): by the test score."""
        return self.split == Split.CHRONOLOGICAL

    def ranking_metric(self) -> str:
        """The run metric compare ranks by and tune's result is compared on."""
        return ranked_by(self.split, self.metric)


@dataclass(frozen=True, kw_only=True)
class ScoringArgs(StepArgs, Protocol):
    """The arguments every model and baseline step shares: the training table and the protocol's
    parameters (how it is split, cross-validated, scored, bootstrapped and backtested)."""

    training_data: str

    def settings(self) -> Settings:
        """The protocol's settings, checked (inside the step's run, so a bad value fails the run)."""
        return Settings(**{f.name: getattr(self, f.name) for f in dataclasses.fields(Protocol)})


@dataclass(frozen=True)
class Candidate:
    """Something that learns from days and answers for others: ``fit(X, y)`` returns a model,
    ``answer(model, X)`` the probability of "up" per row (or hard 0/1 answers when not
    ``probabilistic``). ``fit_final`` fits the model kept from the whole development period
    (a family may log its training there); by default it is ``fit``."""

    fit: Callable[[pd.DataFrame, pd.Series], Any]
    answer: Callable[[Any, pd.DataFrame], np.ndarray]
    probabilistic: bool = True
    fit_final: Callable[[pd.DataFrame, pd.Series], Any] | None = None


def cv_answers(candidate: Candidate, X: pd.DataFrame, y: pd.Series, split: str, n_folds: int) -> Iterator[np.ndarray]:
    """The candidate's answers for each validation fold of the development period, fold by fold,
    each from a fit on that fold's training rows: walk-forward for ``chronological``, stratified
    for ``random``."""
    for train, valid in cv_folds(split, n_folds).split(X, y):
        model = candidate.fit(X.iloc[train], y.iloc[train])
        yield np.asarray(candidate.answer(model, X.iloc[valid]), dtype=float)


def cross_validate(
    candidate: Candidate,
    X: pd.DataFrame,
    y: pd.Series,
    split: str,
    n_folds: int,
    only: str | None = None,
    report: Callable[[int, dict[str, float]], None] | None = None,
    answers: Sequence[np.ndarray] | None = None,
) -> list[dict[str, float]]:
    """Every available score (or ``only`` that one) on each validation fold of the development
    period, the candidate's answers found by :func:`cv_answers`, or given as ``answers`` (found
    before for this very candidate, by the tuning trial that proposed it): then no fold is fit
    again. ``report(fold, scores)`` hears of each fold as it ends."""
    found = cv_answers(candidate, X, y, split, n_folds) if answers is None else iter(answers)
    folds = []
    for (_, valid), fold_answers in zip(cv_folds(split, n_folds).split(X, y), found, strict=True):
        truth = y.iloc[valid]
        if only is not None:
            folds.append({only: scores.compute(only, truth, fold_answers)})
        else:
            folds.append(scores.all_scores(truth, fold_answers, candidate.probabilistic))
        if report is not None:
            report(len(folds), folds[-1])
    return folds


@dataclass(frozen=True)
class Holdout:
    """The holdout days (in time order) and a candidate's answers for them."""

    truth: np.ndarray
    answers: np.ndarray  # probabilities of "up", or 0/1
    dates: pd.Series | None
    returns: pd.DataFrame | None

    @property
    def predicted_up(self) -> np.ndarray:
        return scores.predictions(self.answers)

    def resampled(self, metric: str) -> Callable[[np.ndarray], np.ndarray]:
        """``metric`` on each resample of the days (a row of day indices)."""
        return lambda indices: scores.resampled(metric, self.truth, self.answers, indices)

    def hits(self) -> np.ndarray:
        """1 on each day predicted right: the series whose dependence sets the block length."""
        return np.asarray(self.predicted_up == self.truth, dtype=float)

    def frame(self) -> pd.DataFrame:
        """date, truth, answer and prediction per day: what ``holdout/predictions.csv`` holds."""
        columns: dict[str, Any] = {"truth": self.truth, "answer": self.answers, "prediction": self.predicted_up}
        if self.dates is not None:
            columns = {names.HOLDOUT_DATE: self.dates.to_numpy(), **columns}
        return pd.DataFrame(columns)


@dataclass(frozen=True)
class Evaluation:
    """Everything the protocol found about one candidate."""

    settings: Settings
    folds: list[dict[str, float]]
    model: Any  # fit on the whole development period
    parts: TrainTest
    holdout: Holdout
    holdout_scores: dict[str, float]
    interval: Interval  # of the selection metric on the holdout
    backtest: Backtest | None
    sharpe_interval: Interval | None

    def cv_mean(self, name: str) -> float:
        return float(np.mean([fold[name] for fold in self.folds]))

    def metrics(self) -> dict[str, float]:
        """Every number to log: CV means and spreads, the selection metric per fold, holdout scores
        (``test_*``, ``f1_experiment_score``) and the interval, the backtest and buy-and-hold."""
        metric = self.settings.metric
        found: dict[str, float] = {}
        for name in self.folds[0]:
            values = [fold[name] for fold in self.folds]
            found[names.cv_mean(name)] = float(np.mean(values))
            found[names.cv_std(name)] = float(np.std(values))
        found |= {names.cv_fold(metric, k): fold[metric] for k, fold in enumerate(self.folds)}
        found |= {names.test_metric(name): value for name, value in self.holdout_scores.items()}
        found[names.PRIMARY_METRIC] = self.holdout_scores["f1"]  # the reference's name for the test F1
        found[UP_RATE] = float(np.mean(self.holdout.truth))
        found[names.ci_low(metric)] = self.interval.low
        found[names.ci_high(metric)] = self.interval.high
        found[names.BLOCK_LENGTH] = float(self.interval.block_length)
        if self.backtest is not None:
            found |= self.backtest.strategy.as_metrics(names.BACKTEST)
            found |= self.backtest.buy_and_hold.as_metrics(names.BUY_AND_HOLD)
        if self.sharpe_interval is not None:
            found[names.BACKTEST_SHARPE_CI_LOW] = self.sharpe_interval.low
            found[names.BACKTEST_SHARPE_CI_HIGH] = self.sharpe_interval.high
        return found

    def folds_frame(self) -> pd.DataFrame:
        """One row per validation fold, a column per score: ``cv/folds.csv``."""
        return pd.DataFrame(self.folds).rename_axis("fold").reset_index()


def holdout_of(data: FeatureSet, parts: TrainTest, answers: np.ndarray) -> Holdout:
    """The holdout rows in time order (a random split draws them shuffled), with their days and returns."""
    position = np.asarray(parts.y_test.index)
    order = np.argsort(position, kind="stable")
    rows = position[order]

    def pick(frame: pd.Series | pd.DataFrame | None) -> Any:
        return None if frame is None else frame.reset_index(drop=True).iloc[rows].reset_index(drop=True)

    dates, returns = pick(data.dates), pick(data.returns)
    return Holdout(parts.y_test.to_numpy()[order].astype(int), np.asarray(answers, dtype=float)[order], dates, returns)


def evaluate(
    candidate: Candidate, data: FeatureSet, settings: Settings, fold_answers: Sequence[np.ndarray] | None = None
) -> Evaluation:
    """Cross-validate ``candidate`` on the development period, fit it on all of it, and score,
    bootstrap and backtest its answers on the holdout. ``fold_answers``: its answers for each
    cross-validation fold, already found (by the tuning trial that proposed it), scored as they
    are rather than fit again: the same scores, one fit instead of ``cv_folds + 1``."""
    parts = split_dataset(data, settings.split, settings.test_size, settings.seed)

    def progress(fold: int, found: dict[str, float]) -> None:
        log.info("fold %d/%d: %s %.4f", fold, settings.cv_folds, settings.metric, found[settings.metric])

    if fold_answers is not None:
        log.info("cross-validation: scoring the answers its tuning trial found on the %d folds", len(fold_answers))
    folds = cross_validate(
        candidate,
        parts.X_train,
        parts.y_train,
        settings.split,
        settings.cv_folds,
        report=progress,
        answers=fold_answers,
    )
    log.info("fitting on the %d development rows, scoring the %d holdout rows", len(parts.y_train), len(parts.y_test))
    model = (candidate.fit_final or candidate.fit)(parts.X_train, parts.y_train)
    holdout = holdout_of(data, parts, np.asarray(candidate.answer(model, parts.X_test), dtype=float))
    holdout_scores = scores.all_scores(holdout.truth, holdout.answers, candidate.probabilistic)
    interval = bootstrap.interval(
        holdout.resampled(settings.metric),
        len(holdout.truth),
        holdout.hits(),
        settings.confidence,
        settings.block_length,
        seed=settings.seed,
    )
    trades, sharpe = None, None
    if holdout.returns is not None and holdout.dates is not None:
        trades = backtest.run(
            holdout.dates,
            holdout.predicted_up,
            holdout.returns[OPEN_TO_CLOSE],
            holdout.returns[CLOSE_TO_CLOSE],
            settings.strategy,
            settings.cost_bps,
        )
        net = trades.days["strategy"].to_numpy()
        sharpe = bootstrap.interval(
            lambda indices: backtest.sharpe_of_resamples(net, indices, trades.periods_per_year),
            len(net),
            net,
            settings.confidence,
            settings.block_length,
            seed=settings.seed,
        )
    return Evaluation(settings, folds, model, parts, holdout, holdout_scores, interval, trades, sharpe)
