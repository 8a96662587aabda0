"""Walk-forward splits of the trading-session calendar with purge and embargo, so no label peeks into a test block.

A row dated d carries a label measured over sessions [d, d + label_horizon] (fwd_ret_5: close of d to close of
d+5). A training row whose label window reaches into the test block has seen test-period prices; the
**purge** drops the ``purge_sessions`` (>= label horizon) sessions before each test block and before the
validation slice. The **embargo** drops the ``embargo_sessions`` right after a test block from any fit that
uses later data: returns are serially correlated, so a row just after the test block still echoes it. In the
production walk-forward (train strictly before test, ``block_split`` / ``walk_forward_blocks``) no training row
follows its test block and the embargo never bites; it matters for ``purged_kfold_blocks``, where test blocks
sit in the middle of the history.

Training window of a test block starting at session i: the ``train_sessions`` sessions ending ``purge_sessions``
before i, or, with ``max_train_sessions`` above it, every session the calendar given holds before that, up to
``max_train_sessions`` (an expanding window: a block needs ``train_sessions`` of history and learns from all it has,
capped). Its last ``validation_sessions`` form the validation slice (early stopping), and a further
``purge_sessions`` are dropped between the fit part and the validation slice.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from alpha_assets.lib.settings import SESSIONS_PER_QUARTER, SESSIONS_PER_YEAR


@dataclass(frozen=True)
class WalkForwardConfig:
    train_sessions: int = SESSIONS_PER_YEAR
    purge_sessions: int = 5  # >= label horizon
    embargo_sessions: int = 5
    label_horizon: int = 5
    validation_sessions: int = 42  # last part of the training window, for early stopping, purged from the fit
    # The window grows past train_sessions (the minimum a block needs) up to this many sessions of the history
    # given; 0 = a rolling window of exactly train_sessions.
    max_train_sessions: int = 0

    def check(self) -> None:
        if self.purge_sessions < self.label_horizon:
            raise ValueError(
                f"purge_sessions ({self.purge_sessions}) must be >= label_horizon ({self.label_horizon})"
            )
        if min(self.train_sessions, self.validation_sessions) <= 0 or self.embargo_sessions < 0:
            raise ValueError("train_sessions and validation_sessions must be > 0, embargo_sessions >= 0")
        if self.validation_sessions + self.purge_sessions >= self.train_sessions:
            raise ValueError(
                f"validation_sessions ({self.validation_sessions}) + purge ({self.purge_sessions}) leave no fit "
                f"rows in a {self.train_sessions}-session training window"
            )

    @property
    def sessions_before_test(self) -> int:
        """Sessions of history a test block needs before its first day."""
        return self.train_sessions + self.purge_sessions


@dataclass(frozen=True)
class BlockSplit:
    fit_dates: list[date]
    validation_dates: list[date]
    test_dates: list[date]

    @property
    def train_dates(self) -> list[date]:
        """Fit and validation dates together (what a final refit on the whole window would use)."""
        return sorted(self.fit_dates + self.validation_dates)


def _sorted_sessions(sessions: Sequence[date]) -> list[date]:
    out = sorted(set(sessions))
    if not out:
        raise ValueError("no sessions given")
    return out


def block_split(
    sessions: Sequence[date], test_start: date, test_end: date, cfg: WalkForwardConfig = WalkForwardConfig()
) -> BlockSplit:
    """The purged fit / validation / test split for one test block [test_start, test_end] (e.g. a quarter).

    ``sessions`` must include the history before the block. Raises ValueError when there are fewer than
    ``train_sessions + purge_sessions`` sessions before ``test_start`` (a world shorter than a training year).
    """
    cfg.check()
    ss = _sorted_sessions(sessions)
    i0 = bisect.bisect_left(ss, test_start)
    i1 = bisect.bisect_right(ss, test_end)
    if i0 >= i1:
        raise ValueError(f"no sessions in the test block [{test_start}, {test_end}]")
    need = cfg.sessions_before_test
    if i0 < need:
        raise ValueError(
            f"not enough history before {test_start}: need {need} sessions "
            f"({cfg.train_sessions} training + {cfg.purge_sessions} purge), have {i0}"
        )
    length = max(cfg.train_sessions, min(cfg.max_train_sessions, i0 - cfg.purge_sessions))
    train = ss[i0 - cfg.purge_sessions - length : i0 - cfg.purge_sessions]
    validation = train[-cfg.validation_sessions :]
    fit = train[: len(train) - cfg.validation_sessions - cfg.purge_sessions]
    return BlockSplit(fit_dates=fit, validation_dates=validation, test_dates=ss[i0:i1])


def walk_forward_blocks(
    sessions: Sequence[date],
    test_sessions: int = SESSIONS_PER_QUARTER,
    cfg: WalkForwardConfig = WalkForwardConfig(),
) -> list[BlockSplit]:
    """Consecutive test blocks of ``test_sessions`` sessions tiling everything after the first training window,
    each trained on the rolling window before it (the last block may be shorter)."""
    cfg.check()
    if test_sessions <= 0:
        raise ValueError("test_sessions must be > 0")
    ss = _sorted_sessions(sessions)
    first = cfg.sessions_before_test
    if len(ss) <= first:
        raise ValueError(
            f"not enough sessions for one walk-forward block: need more than {first} "
            f"({cfg.train_sessions} training + {cfg.purge_sessions} purge), have {len(ss)}"
        )
    return [
        block_split(ss, ss[i], ss[min(i + test_sessions, len(ss)) - 1], cfg)
        for i in range(first, len(ss), test_sessions)
    ]


def purged_kfold_blocks(
    sessions: Sequence[date], n_folds: int = 5, cfg: WalkForwardConfig = WalkForwardConfig()
) -> list[BlockSplit]:
    """Purged k-fold with embargo (research only: it trains on data after the test block).

    Each fold's test block is a contiguous 1/n_folds of the sessions; fit and validation use every other
    session except the ``purge_sessions`` before and the ``embargo_sessions`` after the test block. The
    validation slice is the last ``validation_sessions`` usable sessions before the test block (after it for the
    first fold), with the same purge before it and embargo after it removed from the fit. ``train_sessions``
    is not used here.
    """
    cfg.check()
    ss = _sorted_sessions(sessions)
    n = len(ss)
    if n_folds < 2 or n // n_folds <= cfg.purge_sessions + cfg.embargo_sessions:
        raise ValueError(f"{n} sessions cannot make {n_folds} purged folds")
    bounds = [round(k * n / n_folds) for k in range(n_folds + 1)]
    out = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        usable = [i for i in range(n) if i < a - cfg.purge_sessions or i >= b + cfg.embargo_sessions]
        before = [i for i in usable if i < a]
        after = [i for i in usable if i >= b]
        v = cfg.validation_sessions
        val = before[-v:] if len(before) >= v else after[:v]
        if len(val) < v:
            raise ValueError(f"fold [{ss[a]}, {ss[b - 1]}] leaves fewer than {v} validation sessions")
        lo, hi = val[0] - cfg.purge_sessions, val[-1] + cfg.embargo_sessions
        fit = [i for i in usable if i < lo or i > hi]
        out.append(BlockSplit([ss[i] for i in fit], [ss[i] for i in val], ss[a:b]))
    return out


def assert_purged(split: BlockSplit, sessions: Sequence[date], horizon: int, embargo: int = 0) -> None:
    """Raise AssertionError when a fit or validation row's label window [d, d + horizon sessions] overlaps the
    test block, when a fit row's window overlaps the validation slice, or (``embargo`` > 0) when a fit row lies
    within ``embargo`` sessions after the test block."""
    ss = _sorted_sessions(sessions)
    pos = {d: i for i, d in enumerate(ss)}

    def span(dates: list[date]) -> tuple[int, int] | None:
        return (pos[min(dates)], pos[max(dates)]) if dates else None

    def overlaps(d: date, block: tuple[int, int]) -> bool:
        i = pos[d]
        return i <= block[1] and i + horizon >= block[0]

    test = span(split.test_dates)
    val = span(split.validation_dates)
    if test is None:
        raise AssertionError("empty test block")
    for name, dates in (("fit", split.fit_dates), ("validation", split.validation_dates)):
        bad = [d for d in dates if overlaps(d, test)]
        if bad:
            raise AssertionError(
                f"{len(bad)} {name} rows' label windows overlap the test block, e.g. {bad[0]}"
            )
    if val is not None:
        bad = [d for d in split.fit_dates if overlaps(d, val)]
        if bad:
            raise AssertionError(
                f"{len(bad)} fit rows' label windows overlap the validation slice, e.g. {bad[0]}"
            )
    if embargo > 0:
        bad = [d for d in split.fit_dates if test[1] < pos[d] <= test[1] + embargo]
        if bad:
            raise AssertionError(
                f"{len(bad)} fit rows inside the embargo after the test block, e.g. {bad[0]}"
            )
