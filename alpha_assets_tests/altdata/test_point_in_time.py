"""No alt-data value is visible before it was published: the join rule itself, and features.alt_features built
from the demo world's vendors."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alpha_assets.lib.altdata.point_in_time import TS, asof_cutoff, point_in_time, published_at
from partitions.calendar import sessions_between

SESSIONS = sessions_between(date(2024, 3, 4), date(2024, 3, 15))


def _utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def _events(rows) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"ticker": pl.String, "published_at": TS, "v": pl.Float64}, orient="row")


def test_a_call_after_the_close_is_first_visible_the_next_session() -> None:
    call_end = _utc(2024, 3, 5, 21, 30)  # after the US close on Tuesday
    pub = published_at("transcripts", call_end)
    assert pub > asof_cutoff(date(2024, 3, 5))
    out = point_in_time(SESSIONS, ["AAA"], _events([("AAA", pub, 0.7)]), ["v"], "call", max_age_days=120)
    by_day = dict(zip(out["trade_date"], out["call_v"], strict=True))
    assert by_day[date(2024, 3, 5)] is None and by_day[date(2024, 3, 4)] is None
    assert by_day[date(2024, 3, 6)] == 0.7 and by_day[date(2024, 3, 15)] == 0.7
    age = dict(zip(out["trade_date"], out["call_age_days"], strict=True))
    assert age[date(2024, 3, 6)] == pytest.approx(
        (asof_cutoff(date(2024, 3, 6)) - pub).total_seconds() / 86400
    )


def test_a_newer_value_replaces_the_older_only_once_published_and_stale_values_expire() -> None:
    ev = _events(
        [
            ("AAA", _utc(2024, 3, 4, 12), 1.0),
            ("AAA", _utc(2024, 3, 7, 22, 0, 1), 2.0),  # one second after Thursday's cut-off
            ("BBB", _utc(2024, 3, 4, 12), 5.0),
        ]
    )
    out = point_in_time(SESSIONS, ["AAA", "BBB"], ev, ["v"], "src", max_age_days=3)
    a = dict(
        zip(
            out.filter(pl.col("ticker") == "AAA")["trade_date"],
            out.filter(pl.col("ticker") == "AAA")["src_v"],
            strict=True,
        )
    )
    assert a[date(2024, 3, 6)] == 1.0 and a[date(2024, 3, 7)] is None and a[date(2024, 3, 8)] == 2.0
    b = out.filter(pl.col("ticker") == "BBB")
    # published Monday noon, max age 3 days: usable through Wednesday night, null from Thursday
    assert b.filter(pl.col("trade_date") <= date(2024, 3, 6))["src_v"].to_list() == [5.0, 5.0, 5.0]
    assert b.filter(pl.col("trade_date") >= date(2024, 3, 7))["src_v"].null_count() == len(SESSIONS) - 3
    assert (
        b.filter(pl.col("trade_date") >= date(2024, 3, 7))["src_age_days"].null_count() == len(SESSIONS) - 3
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["A", "B", "C"]), st.integers(0, 14 * 24 * 4), st.floats(-5, 5)),
        min_size=0,
        max_size=40,
    )
)
def test_the_join_equals_a_brute_force_as_of_lookup(raw) -> None:
    base = _utc(2024, 3, 1)
    rows = [(t, base + timedelta(minutes=15 * q), v) for t, q, v in raw]
    out = point_in_time(SESSIONS, ["A", "B", "C"], _events(rows), ["v"], "s", max_age_days=5)
    for d, t, v, pub in out.select("trade_date", "ticker", "s_v", "s_published_at").iter_rows():
        cut = asof_cutoff(d)
        known = [
            (p, val) for tt, p, val in rows if tt == t and p <= cut and (cut - p).total_seconds() <= 5 * 86400
        ]
        if not known:
            assert v is None and pub is None
        else:
            latest = max(p for p, _ in known)
            assert pub == latest and pub <= cut
            assert v in [val for p, val in known if p == latest]


@pytest.mark.slow
def test_alt_features_never_show_a_value_before_it_was_published(trained_alt) -> None:
    home, *_ = trained_alt
    feats = pl.read_delta(str(home.lake / "features" / "alt_features"))
    assert feats.select("trade_date", "ticker").is_unique().all()
    sources = {
        "parking": ("parking_lot_counts", "cars_per_store", "parking_cars_per_store"),
        "tanks": ("oil_tank_levels", "mean_fill_ratio", "tanks_mean_fill_ratio"),
        "call": ("call_sentiment", "call_sentiment", "call_sentiment"),
        "filing": ("filing_features", "mdna_sentiment", "filing_mdna_sentiment"),
    }
    for prefix, (table, raw_col, feat_col) in sources.items():
        raw = pl.read_delta(str(home.lake / "raw" / table)).select(
            "ticker", "trade_date", "published_at", raw_col
        )
        assert raw.height > 0, table
        filled = feats.filter(pl.col(feat_col).is_not_null())
        assert filled.height > 0, feat_col
        cut = filled.with_columns(
            pl.col("trade_date").map_elements(asof_cutoff, return_dtype=TS).alias("cutoff")
        )
        # every value shown was published by its day's cut-off, and is the latest such value
        assert (cut[f"{prefix}_published_at"] <= cut["cutoff"]).all()
        for d, t, v, c in cut.select("trade_date", "ticker", feat_col, "cutoff").iter_rows():
            known = raw.filter((pl.col("ticker") == t) & (pl.col("published_at") <= c)).sort("published_at")
            assert known.height and known[raw_col][-1] == pytest.approx(v), (prefix, d, t)
        # and each raw value is absent on the days before its publication
        for t, pub in raw.select("ticker", "published_at").iter_rows():
            before = (
                feats.filter(pl.col("ticker") == t)
                .with_columns(pl.col("trade_date").map_elements(asof_cutoff, return_dtype=TS).alias("cutoff"))
                .filter(pl.col("cutoff") < pub)
            )
            assert (before[f"{prefix}_published_at"].fill_null(pub - timedelta(days=1000)) < pub).all()
    # a call's tone reaches the features the session after the call (after-close calls + vendor lag)
    calls = pl.read_delta(str(home.lake / "raw" / "call_sentiment")).sort("trade_date")
    last_day = feats["trade_date"].max()
    t, d, pub = (
        calls.filter(pl.col("trade_date") < last_day).select("ticker", "trade_date", "published_at").row(0)
    )
    rows = feats.filter(pl.col("ticker") == t).sort("trade_date")
    on_day = rows.filter(pl.col("trade_date") == d)["call_published_at"]
    next_day = rows.filter(pl.col("trade_date") > d)["call_published_at"]
    assert on_day.null_count() == 1 or on_day[0] < pub
    assert next_day[0] == pub
