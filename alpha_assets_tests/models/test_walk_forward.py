"""Walk-forward splits: no training label window reaches into its test block or validation slice."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alpha_assets.lib.models.walk_forward import (
    BlockSplit,
    WalkForwardConfig,
    assert_purged,
    block_split,
    purged_kfold_blocks,
    walk_forward_blocks,
)

from .synthetic import business_days

SESSIONS = business_days(700)


def test_quarter_block_trains_on_the_year_before_minus_the_purge():
    cfg = WalkForwardConfig()
    split = block_split(SESSIONS, SESSIONS[400], SESSIONS[462], cfg)
    assert split.test_dates == SESSIONS[400:463]
    assert split.validation_dates == SESSIONS[400 - 5 - 42 : 395]
    assert split.fit_dates == SESSIONS[400 - 5 - 252 : 395 - 42 - 5]
    assert len(split.fit_dates) == 252 - 42 - 5
    assert_purged(split, SESSIONS, horizon=cfg.label_horizon)


def test_an_expanding_window_learns_from_all_history_up_to_its_cap_and_stays_purged():
    cfg = WalkForwardConfig(max_train_sessions=600)
    split = block_split(
        SESSIONS, SESSIONS[400], SESSIONS[462], cfg
    )  # 395 sessions before the purge: all of them
    assert split.fit_dates[0] == SESSIONS[0] and split.validation_dates == SESSIONS[400 - 5 - 42 : 395]
    assert len(split.train_dates) == 395 - 5  # less the purge between the fit part and the validation slice
    assert_purged(split, SESSIONS, horizon=cfg.label_horizon)
    capped = block_split(SESSIONS, SESSIONS[690], SESSIONS[699], cfg)  # 685 before the purge: the last 600
    assert capped.fit_dates[0] == SESSIONS[685 - 600] and len(capped.train_dates) == 600 - 5
    # the minimum is still a training year: a block with less history before it is refused, as when rolling
    with pytest.raises(ValueError, match="not enough history"):
        block_split(SESSIONS, SESSIONS[200], SESSIONS[262], cfg)
    # no cap above the minimum: the rolling window of the seed
    assert (
        block_split(SESSIONS, SESSIONS[400], SESSIONS[462], WalkForwardConfig()).fit_dates[0] == SESSIONS[143]
    )


@settings(max_examples=60, deadline=None)
@given(
    start=st.integers(0, 699),
    length=st.integers(1, 90),
    train=st.integers(40, 260),
    purge=st.integers(1, 10),
    val=st.integers(1, 20),
)
def test_no_fit_or_validation_label_window_overlaps_the_test_block(start, length, train, purge, val):
    cfg = WalkForwardConfig(
        train_sessions=train, purge_sessions=purge, label_horizon=purge, validation_sessions=val
    )
    end = min(start + length, len(SESSIONS)) - 1
    if start < train + purge:
        with pytest.raises(ValueError, match="need"):
            block_split(SESSIONS, SESSIONS[start], SESSIONS[end], cfg)
        return
    split = block_split(SESSIONS, SESSIONS[start], SESSIONS[end], cfg)
    assert_purged(split, SESSIONS, horizon=purge)
    assert max(split.fit_dates) < min(split.validation_dates) < min(split.test_dates)
    assert len(split.validation_dates) == val


def test_a_world_shorter_than_a_training_year_raises_naming_the_need():
    with pytest.raises(ValueError, match=r"need 257 sessions"):
        block_split(SESSIONS[:200], SESSIONS[150], SESSIONS[199], WalkForwardConfig())
    with pytest.raises(ValueError, match="not enough sessions"):
        walk_forward_blocks(SESSIONS[:200])


def test_purge_shorter_than_the_label_horizon_is_refused():
    with pytest.raises(ValueError, match="label_horizon"):
        block_split(
            SESSIONS, SESSIONS[400], SESSIONS[450], WalkForwardConfig(purge_sessions=2, label_horizon=5)
        )


def test_walk_forward_blocks_tile_the_history_after_the_first_year_and_are_purged():
    blocks = walk_forward_blocks(SESSIONS, test_sessions=63)
    tested = [d for b in blocks for d in b.test_dates]
    assert tested == SESSIONS[257:]
    for b in blocks:
        assert_purged(b, SESSIONS, horizon=5)


def test_assert_purged_catches_a_training_row_whose_label_reaches_the_test_block():
    leaky = BlockSplit(
        fit_dates=SESSIONS[100:200], validation_dates=SESSIONS[205:240], test_dates=SESSIONS[242:300]
    )
    with pytest.raises(AssertionError, match="test block"):
        assert_purged(leaky, SESSIONS, horizon=5)
    fit_touches_validation = BlockSplit(SESSIONS[100:203], SESSIONS[205:230], SESSIONS[240:300])
    with pytest.raises(AssertionError, match="validation"):
        assert_purged(fit_touches_validation, SESSIONS, horizon=5)


def test_purged_kfold_embargoes_the_sessions_after_each_test_block():
    cfg = WalkForwardConfig(embargo_sessions=7, validation_sessions=20)
    folds = purged_kfold_blocks(SESSIONS[:500], n_folds=5, cfg=cfg)
    assert len(folds) == 5
    for f in folds:
        assert_purged(f, SESSIONS[:500], horizon=5, embargo=7)
    middle = folds[2]
    after = SESSIONS.index(middle.test_dates[-1])
    assert not set(SESSIONS[after + 1 : after + 8]) & set(middle.fit_dates + middle.validation_dates)
    assert SESSIONS[after + 8] in middle.fit_dates


def test_a_validation_slice_that_leaves_no_fit_rows_is_refused():
    with pytest.raises(ValueError, match="no fit rows"):
        WalkForwardConfig(train_sessions=40, validation_sessions=35, purge_sessions=5).check()
