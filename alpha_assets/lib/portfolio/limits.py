"""Dollar-neutral long/short target books from alpha scores: HRP sizing inside each book, then position limits.

Units: every weight and every cap is a fraction of NAV. A book of gross leverage ``g`` holds ``+g/2`` long and
``-g/2`` short; ``max_name_weight=0.05`` means no name above 5% of NAV on either side.

Group caps (sector, country, correlation group) apply to the **gross** exposure of the group,
``sum(|w|)`` over its long *and* short names. That is the concentration a PM reads off a risk report ("no more
than 20% of our capital in one sector"), and it also bounds the group's net exposure, since
``|net| <= gross``. A pair trade inside one sector therefore uses the sector's budget on both legs.

Capping method (iterative capping with pro-rata redistribution, a water-filling):

1. Start from ``|w| = book_gross * hrp`` in each book.
2. Scale every group above its cap down to exactly its cap (sector, then country, then correlation group), and
   clip every name above ``max_name_weight`` to it. Names touched by a cap are *frozen*: they never grow again.
3. Each book's shortfall (``book_gross - sum|w|``) is handed to that book's unfrozen names pro rata to their HRP
   weight, so unfrozen names keep HRP's relative sizing. Repeat 2-3 until no cap is exceeded and both books
   are full. Every round freezes at least one more name, so it ends within N rounds.
4. If a book runs out of unfrozen names while short of its target, the greedy pass is not conclusive (freezing
   is myopic); a linear program then finds the limit-respecting book closest to HRP in L1 distance, or proves
   none exists, in which case ``InfeasibleLimitsError`` says which limit binds and with what numbers.
5. When no full book exists and ``hold_cash`` is set (the fund's policy), the books are built at the largest
   dollar-neutral gross the limits allow (a linear program: maximise the per-side gross ``s`` with both books
   at ``s``) and the rest of the capital is held in cash. Only a day that can hold nothing (no eligible name on
   a side, or caps leaving no room) is refused.

Whatever path is taken, the result is re-checked with ``check_limits`` before it is returned: a limit is never
silently violated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import polars as pl

from alpha_assets.lib.determinism import stable_round
from alpha_assets.lib.portfolio.hrp import LINKAGES, cluster_tree, covariance, hrp_weights

GROUP_LIMITS = (
    ("sector", "max_sector_weight"),
    ("country", "max_country_weight"),
    ("corr_group", "max_corr_group_weight"),
)


class InfeasibleLimitsError(ValueError):
    """No book satisfies the limits with the names available (the message names the limit and the numbers)."""


@dataclass(frozen=True)
class PortfolioLimits:
    """What a PM tunes for target books. Weights and caps are fractions of NAV; group caps bound gross |w|.

    Correlation groups: the correlation-distance tree (``d = sqrt((1 - rho) / 2)``, HRP's distance) of all names
    of both books, built with ``corr_group_linkage`` and cut at ``corr_group_threshold``. With the default
    complete linkage and 0.5, every pair inside a group has correlation of at least 0.5 (d = 0.5 <=> rho = 0.5).
    Single linkage (HRP's default) would chain names through intermediaries: on a 5,000-name universe it put
    half of both books into one "group", which is not what a PM means by a correlation group.
    """

    # The fund's rules, defined here once (portfolio.target_weights' PortfolioConfig takes its defaults from this
    # class). 0.3, not 0.2: at 5% per name each half-book needs >= 10 names, which a 50-name universe only has at
    # 0.3.
    long_quantile: float = 0.3
    short_quantile: float = 0.3
    max_name_weight: float = 0.05
    max_sector_weight: float = 0.20
    max_country_weight: float = 0.30
    max_corr_group_weight: float = 0.25
    corr_group_threshold: float = 0.5
    min_adv_usd: float = 1_000_000.0
    gross_leverage: float = 1.0
    corr_group_linkage: str = "complete"
    linkage: str = "single"
    optimal_ordering: bool = False
    tolerance: float = 1e-9
    # When no full book meets the limits: invest what the limits allow (dollar-neutral) and hold the rest in cash.
    # False: refuse such a day (InfeasibleLimitsError), the behaviour before cash books.
    hold_cash: bool = True
    # A no-trade band on the ranking: a name held yesterday stays on its side while it ranks within
    # long_quantile + hold_band (short_quantile + hold_band) of its end; only the rest of the book is refilled
    # from the best-ranked names. 0: the books are the top/bottom quantiles every day (``select_books``). It acts
    # only when yesterday's book is passed (``held``). 0.2: chosen with the research benchmark's cost-model
    # backtest (benchmarks/research.py) on its tuning worlds, with the unsmoothed traded score: 0.2 against 0.1
    # cut turnover ~40% for the same net Sharpe (README, Models).
    hold_band: float = 0.2

    def __post_init__(self) -> None:
        if not (0 < self.long_quantile <= 1 and 0 < self.short_quantile <= 1):
            raise ValueError("long_quantile and short_quantile must lie in (0, 1]")
        if self.long_quantile + self.short_quantile > 1 + 1e-12:
            raise ValueError("long_quantile + short_quantile must not exceed 1 (the books would overlap)")
        for name in ("max_name_weight", "max_sector_weight", "max_country_weight", "max_corr_group_weight"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        if not self.gross_leverage > 0:
            raise ValueError("gross_leverage must be positive")
        if not 0 <= self.corr_group_threshold <= 1:
            raise ValueError("corr_group_threshold is a correlation distance in [0, 1]")
        if self.min_adv_usd < 0:
            raise ValueError("min_adv_usd must not be negative")
        if not 0 <= self.hold_band < 1:
            raise ValueError("hold_band is a share of the ranking in [0, 1)")
        if self.linkage not in LINKAGES or self.corr_group_linkage not in LINKAGES:
            raise ValueError(f"linkage and corr_group_linkage must be one of {LINKAGES}")

    @property
    def book_gross(self) -> float:
        """Gross exposure of each side: the long book sums to +book_gross, the short book to -book_gross."""
        return self.gross_leverage / 2.0


def select_books(
    ranked: list[str],
    n_long: int,
    n_short: int,
    limits: PortfolioLimits,
    held: Mapping[str, str] | None = None,
) -> tuple[list[str], list[str]]:
    """(long names, short names) from names ranked best first: the top ``n_long`` and bottom ``n_short``, or, with
    ``held`` (ticker -> "long"/"short", yesterday's book) and ``limits.hold_band`` > 0, yesterday's names that
    still rank within their side's quantile + band first (best first), then the best-ranked names not yet held.
    The band trades a little forecast for far fewer trades: a name near the cut-off no longer flips in and out
    of the book with the score's daily noise, and every flip costs a round trip."""
    n = len(ranked)
    band = limits.hold_band if held else 0.0
    if band <= 0 or held is None:  # no held book means no band
        return ranked[:n_long], (ranked[n - n_short :] if n_short else [])
    long_zone = set(ranked[: math.floor((limits.long_quantile + band) * n + 1e-9)])
    short_zone = set(ranked[n - math.floor((limits.short_quantile + band) * n + 1e-9) :])
    longs = [t for t in ranked if held.get(t) == "long" and t in long_zone][:n_long]
    shorts = [t for t in reversed(ranked) if held.get(t) == "short" and t in short_zone][:n_short]
    taken = set(longs) | set(shorts)
    for side, count, order in ((longs, n_long, ranked), (shorts, n_short, ranked[::-1])):
        for t in order:
            if len(side) >= count:
                break
            if t not in taken:
                side.append(t)
                taken.add(t)
    return longs, shorts


def build_target_weights(
    alpha: pl.DataFrame,
    returns: Any,
    meta: pl.DataFrame,
    limits: PortfolioLimits | None = None,
    held: Mapping[str, str] | None = None,
) -> pl.DataFrame:
    """Dollar-neutral target weights: liquidity filter, alpha quantile books, HRP per book, then limits.

    - ``alpha``: columns ``ticker``, ``alpha_score`` (higher is better).
    - ``returns``: daily returns history, either a wide polars frame whose columns are tickers (non-ticker
      columns such as ``trade_date`` are ignored; see ``wide_returns``), or a T×N numpy array whose columns
      follow the order of ``alpha["ticker"]``.
    - ``meta``: columns ``ticker``, ``sector``, ``country``, ``adv_usd``.

    A name is eligible when it has a finite alpha score, metadata with ``adv_usd >= min_adv_usd``, and a
    complete, non-constant returns history (HRP needs a risk estimate). The top ``long_quantile`` of eligible
    names by alpha (ties broken by ticker) are bought, the bottom ``short_quantile`` sold; book sizes are
    ``floor(quantile * eligible)``. With ``held`` (yesterday's ticker -> side) and ``limits.hold_band`` > 0, the
    names still within the band keep their side (``select_books``). HRP sizes each book over its names in ticker order: HRP's midpoint bisection
    depends on column order, and a fixed order makes the book independent of how the inputs were sorted.

    Returns one row per held name: ``ticker, side ("long"/"short"), weight`` (signed, fraction of NAV),
    ``hrp_weight`` (signed, before limits), ``alpha_score, sector, country, adv_usd, corr_group`` and
    ``binding_limit`` (the limit the name sits at in the final book: its own cap first, then its sector's,
    country's or correlation group's; null if none binds). Names without a returns column are not eligible.
    When full books break a limit, ``hold_cash`` (the default) builds the largest dollar-neutral book the limits
    allow and leaves the rest in cash (``invested_share`` < 1). Raises ``InfeasibleLimitsError`` when no book can
    be held (or, with ``hold_cash=False``, when no full book satisfies the limits).
    """
    limits = limits or PortfolioLimits()
    _require_columns(alpha, ("ticker", "alpha_score"), "alpha")
    _require_columns(meta, ("ticker", "sector", "country", "adv_usd"), "meta")
    if meta["ticker"].is_duplicated().any():
        raise ValueError(
            f"meta has duplicate tickers: {meta.filter(pl.col('ticker').is_duplicated())['ticker'].unique().to_list()[:10]}"
        )
    history = _returns_by_ticker(returns, alpha)

    eligible = (
        alpha.select("ticker", pl.col("alpha_score").cast(pl.Float64))
        .filter(pl.col("alpha_score").is_finite())
        .unique("ticker", keep="first", maintain_order=True)
        .join(meta.select("ticker", "sector", "country", "adv_usd"), on="ticker", how="inner")
        .filter(pl.col("adv_usd") >= limits.min_adv_usd)
        .filter(pl.col("ticker").is_in(list(_sizeable_tickers(history))))
        # ties (after rounding off float noise: it must not decide who is bought) broken by ticker
        .sort([stable_round(pl.col("alpha_score")), pl.col("ticker")], descending=[True, False])
    )
    n_eligible = eligible.height
    n_long = math.floor(limits.long_quantile * n_eligible + 1e-9)
    n_short = math.floor(limits.short_quantile * n_eligible + 1e-9)
    for side, count, quantile in (
        ("long", n_long, limits.long_quantile),
        ("short", n_short, limits.short_quantile),
    ):
        if count == 0:
            raise InfeasibleLimitsError(
                f"{side}_quantile={quantile} of {n_eligible} eligible names selects no {side} names "
                f"(liquidity filter min_adv_usd={limits.min_adv_usd:,.0f})"
            )
    longs, shorts = select_books(eligible["ticker"].to_list(), n_long, n_short, limits, held)
    books = pl.concat(
        [
            eligible.filter(pl.col("ticker").is_in(longs)).with_columns(side=pl.lit("long")),
            eligible.filter(pl.col("ticker").is_in(shorts)).with_columns(side=pl.lit("short")),
        ]
    ).sort("ticker")
    tickers = books["ticker"].to_list()
    is_long = (books["side"] == "long").to_numpy()
    book_returns = np.column_stack([history[t] for t in tickers])

    hrp = np.empty(len(tickers))
    for mask in (is_long, ~is_long):
        hrp[mask] = hrp_weights(
            book_returns[:, mask], linkage=limits.linkage, optimal_ordering=limits.optimal_ordering
        )
    corr_group = correlation_groups(book_returns, limits)
    books = books.with_columns(corr_group=pl.Series(corr_group, dtype=pl.Int64))

    groups = {column: _codes(books[column]) for column, _ in GROUP_LIMITS}
    sized_limits = replace(limits, hold_cash=False)  # the book built is checked exactly against its gross
    try:
        _check_name_capacity(limits, int(is_long.sum()), int((~is_long).sum()), n_eligible)
        magnitudes = cap_book_weights(hrp, is_long, groups, limits)
    except InfeasibleLimitsError as full_book_refused:
        if not limits.hold_cash:
            raise
        per_side = max_invested_gross(is_long, groups, limits)
        if per_side <= limits.tolerance:
            raise InfeasibleLimitsError(f"{full_book_refused}; no name can be held at all") from None
        # Just under the maximum, so the capped book is strictly feasible (scaling a feasible book down stays so).
        sized_limits = replace(limits, gross_leverage=2.0 * per_side * (1.0 - 1e-9), hold_cash=False)
        magnitudes = cap_book_weights(hrp, is_long, groups, sized_limits)

    sign = np.where(is_long, 1.0, -1.0)
    target = books.with_columns(
        weight=pl.Series(sign * magnitudes),
        hrp_weight=pl.Series(sign * limits.book_gross * hrp),
        binding_limit=pl.Series(_binding_limits(magnitudes, groups, limits), dtype=pl.String),
    ).select(
        "ticker",
        "side",
        "weight",
        "hrp_weight",
        "alpha_score",
        "sector",
        "country",
        "adv_usd",
        "corr_group",
        "binding_limit",
    )
    breaches = check_limits(target, meta, sized_limits)
    if breaches:
        # Only reachable through a numerical failure of the LP fallback: never hand out a breaching book.
        raise InfeasibleLimitsError("limits could not be met to tolerance: " + "; ".join(breaches[:5]))
    return target.sort(
        [pl.col("side"), pl.col("weight").abs(), pl.col("ticker")], descending=[False, True, False]
    )


def correlation_groups(book_returns: np.ndarray, limits: PortfolioLimits) -> np.ndarray:
    """Correlation-group label (1..k) per column: the correlation-distance tree cut at the threshold."""
    if book_returns.shape[1] == 1:
        return np.ones(1, dtype=np.int64)
    from scipy.cluster import hierarchy

    tree = cluster_tree(covariance(book_returns), linkage=limits.corr_group_linkage, optimal_ordering=False)
    return hierarchy.fcluster(tree, t=limits.corr_group_threshold, criterion="distance").astype(np.int64)


def cap_book_weights(
    hrp: np.ndarray,
    is_long: np.ndarray,
    groups: dict[str, np.ndarray],
    limits: PortfolioLimits,
) -> np.ndarray:
    """Weight magnitudes (fractions of NAV) meeting every cap with both books full.

    ``hrp`` holds HRP weights summing to 1 within each book; ``groups`` maps ``sector``/``country``/
    ``corr_group`` to integer codes per name. See the module docstring for the method.
    """
    book_gross = limits.book_gross
    caps = {column: getattr(limits, cap_name) for column, cap_name in GROUP_LIMITS}
    magnitudes = book_gross * hrp
    frozen = np.zeros(hrp.size, dtype=bool)
    shortfall_tolerance = 1e-13 * max(book_gross, 1.0)

    # Every round that does not finish freezes at least one more name, hence the bound.
    for _ in range(hrp.size + 2):
        for column, codes in groups.items():
            gross = np.bincount(codes, weights=magnitudes)
            over = gross > caps[column]
            if over.any():
                scale = np.ones(gross.size)
                scale[over] = caps[column] / gross[over]
                hit = over[codes]
                magnitudes[hit] *= scale[codes[hit]]
                frozen |= hit
        hit = magnitudes > limits.max_name_weight
        magnitudes[hit] = limits.max_name_weight
        frozen |= hit

        full = True
        for book in (is_long, ~is_long):
            shortfall = book_gross - magnitudes[book].sum()
            if shortfall <= shortfall_tolerance:
                continue
            receiving = book & ~frozen
            if not receiving.any():
                return _closest_feasible_book(hrp, is_long, groups, limits)
            magnitudes[receiving] += shortfall * hrp[receiving] / hrp[receiving].sum()
            full = False
        if full:
            return magnitudes
    return _closest_feasible_book(hrp, is_long, groups, limits)  # pragma: no cover


def max_invested_gross(is_long: np.ndarray, groups: dict[str, np.ndarray], limits: PortfolioLimits) -> float:
    """The largest per-side gross ``s <= book_gross`` such that both books can hold ``s`` within every cap."""
    from scipy.optimize import linprog

    n = is_long.size
    rows, caps = [], []
    for column, cap_name in GROUP_LIMITS:
        codes = groups[column]
        for code in np.unique(codes):
            rows.append(np.append((codes == code).astype(float), 0.0))
            caps.append(getattr(limits, cap_name))
    # Variables: magnitudes x (n) and the per-side gross s; maximise s with sum(long x) = sum(short x) = s.
    books = np.vstack([np.append(is_long.astype(float), -1.0), np.append((~is_long).astype(float), -1.0)])
    result = linprog(
        c=np.append(np.zeros(n), -1.0),
        A_ub=np.array(rows),
        b_ub=np.array(caps),
        A_eq=books,
        b_eq=np.zeros(2),
        bounds=[(0.0, limits.max_name_weight)] * n + [(0.0, limits.book_gross)],
        method="highs",
    )
    if result.status != 0:
        raise InfeasibleLimitsError(f"the limit solver failed ({result.message}); no book could be sized")
    return float(result.x[-1])


def invested_share(weights: pl.DataFrame, limits: PortfolioLimits) -> float:
    """Gross held over gross allowed: 1.0 for a full book, below 1 when the limits left capital in cash."""
    return float(weights["weight"].abs().sum()) / limits.gross_leverage


def _binding_limits(
    magnitudes: np.ndarray, groups: dict[str, np.ndarray], limits: PortfolioLimits
) -> list[str | None]:
    """Per name, the limit it sits at in the final book (its own cap first, then its groups'), else None."""
    binding: list[str | None] = [None] * magnitudes.size
    at_limit = [("max_name_weight", magnitudes >= limits.max_name_weight - limits.tolerance)]
    for column, cap_name in GROUP_LIMITS:
        gross = np.bincount(groups[column], weights=magnitudes)
        at_limit.append((cap_name, (gross >= getattr(limits, cap_name) - limits.tolerance)[groups[column]]))
    for cap_name, mask in reversed(at_limit):
        for index in np.flatnonzero(mask):
            binding[index] = cap_name
    return binding


def _closest_feasible_book(
    hrp: np.ndarray,
    is_long: np.ndarray,
    groups: dict[str, np.ndarray],
    limits: PortfolioLimits,
) -> np.ndarray:
    """Magnitudes within every cap with full books, closest to HRP in L1; raises if none exists."""
    from scipy.optimize import linprog
    from scipy.sparse import csr_array, hstack, identity, vstack

    n = hrp.size
    target = limits.book_gross * hrp
    # Variables: magnitudes x (n) and deviations d (n); minimise sum(d) with d >= |x - target|.
    eye = identity(n, format="csr")
    deviation_rows = vstack([hstack([eye, -eye]), hstack([-eye, -eye])])
    deviation_bounds = np.concatenate([target, -target])
    group_rows, group_caps = [], []
    for column, cap_name in GROUP_LIMITS:
        codes = groups[column]
        membership = csr_array((np.ones(n), (codes, np.arange(n))), shape=(int(codes.max()) + 1, n))
        group_rows.append(hstack([membership, csr_array((membership.shape[0], n))]))
        group_caps.append(np.full(membership.shape[0], getattr(limits, cap_name)))
    book_rows = csr_array(
        np.vstack([np.concatenate([is_long, np.zeros(n)]), np.concatenate([~is_long, np.zeros(n)])]).astype(
            float
        )
    )
    result = linprog(
        c=np.concatenate([np.zeros(n), np.ones(n)]),
        A_ub=vstack([deviation_rows, *group_rows]),
        b_ub=np.concatenate([deviation_bounds, *group_caps]),
        A_eq=book_rows,
        b_eq=np.full(2, limits.book_gross),
        bounds=[(0.0, limits.max_name_weight)] * n + [(0.0, None)] * n,
        method="highs",
        options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10},
    )
    if result.status == 2:
        raise InfeasibleLimitsError(_diagnose_infeasibility(is_long, groups, limits))
    if result.status != 0:
        raise InfeasibleLimitsError(
            f"the limit solver failed ({result.message}); limits could not be verified"
        )
    return _polish(np.clip(result.x[:n], 0.0, limits.max_name_weight), is_long, groups, limits)


def _polish(
    magnitudes: np.ndarray, is_long: np.ndarray, groups: dict[str, np.ndarray], limits: PortfolioLimits
) -> np.ndarray:
    """Remove the LP's feasibility slack (~1e-10): scale groups back under their caps, books to their gross."""
    for column, cap_name in GROUP_LIMITS:
        codes = groups[column]
        gross = np.bincount(codes, weights=magnitudes)
        cap = getattr(limits, cap_name)
        scale = np.where(gross > cap, cap / np.where(gross > 0, gross, 1.0), 1.0)
        magnitudes = magnitudes * scale[codes]
    for book in (is_long, ~is_long):
        headroom = magnitudes[book].sum()
        if headroom > limits.book_gross:
            magnitudes[book] *= limits.book_gross / headroom
    return magnitudes


def _diagnose_infeasibility(
    is_long: np.ndarray, groups: dict[str, np.ndarray], limits: PortfolioLimits
) -> str:
    """Name the binding limit with its numbers: the capacity each group limit leaves each book."""
    messages = []
    for column, cap_name in GROUP_LIMITS:
        cap = getattr(limits, cap_name)
        codes = groups[column]
        per_group = np.bincount(codes)
        gross_capacity = np.minimum(cap, limits.max_name_weight * per_group).sum()
        if gross_capacity < limits.gross_leverage - limits.tolerance:
            messages.append(
                f"{cap_name}={cap}: the books' {np.count_nonzero(per_group)} {column} groups can hold at most "
                f"{gross_capacity:.4f} gross (with max_name_weight={limits.max_name_weight}), "
                f"but gross_leverage={limits.gross_leverage}"
            )
            continue
        for side, book in (("long", is_long), ("short", ~is_long)):
            in_book = np.bincount(codes[book], minlength=per_group.size)
            book_capacity = np.minimum(cap, limits.max_name_weight * in_book).sum()
            if book_capacity < limits.book_gross - limits.tolerance:
                messages.append(
                    f"{cap_name}={cap}: the {side} book's {np.count_nonzero(in_book)} {column} groups can hold "
                    f"at most {book_capacity:.4f} (with max_name_weight={limits.max_name_weight}), "
                    f"but the book needs {limits.book_gross}"
                )
    if messages:
        return "infeasible limits: " + "; ".join(messages)
    caps = ", ".join(f"{cap_name}={getattr(limits, cap_name)}" for _, cap_name in GROUP_LIMITS)
    return (
        f"infeasible limits: no book of {int(is_long.sum())} long and {int((~is_long).sum())} short names meets "
        f"max_name_weight={limits.max_name_weight} and {caps} together at book gross {limits.book_gross} "
        "(each limit alone leaves enough room; their combination does not)"
    )


def _check_name_capacity(limits: PortfolioLimits, n_long: int, n_short: int, n_eligible: int) -> None:
    needed = math.ceil(limits.book_gross / limits.max_name_weight - 1e-9)
    for side, count, quantile in (
        ("long", n_long, limits.long_quantile),
        ("short", n_short, limits.short_quantile),
    ):
        if count * limits.max_name_weight < limits.book_gross - limits.tolerance:
            raise InfeasibleLimitsError(
                f"max_name_weight={limits.max_name_weight} needs at least {needed} names per book "
                f"(book gross {limits.book_gross} / {limits.max_name_weight}); the {side} book has {count} "
                f"({side}_quantile={quantile} of {n_eligible} eligible names)"
            )


def check_limits(
    weights: pl.DataFrame, meta: pl.DataFrame, limits: PortfolioLimits | None = None
) -> list[str]:
    """Breaches of the limits by a target book (empty list when it complies), one readable line each.

    ``weights`` needs ``ticker`` and signed ``weight``; a ``corr_group`` column (in ``weights`` or ``meta``)
    enables the correlation-group check. ``meta`` supplies ``sector``, ``country`` and ``adv_usd``. Checks,
    all to ``limits.tolerance``: per-name |w|, gross per sector/country/correlation group, liquidity of every
    held name, long sum +gross/2, short sum -gross/2. With ``hold_cash`` a book may be smaller (the rest in
    cash) but stays dollar-neutral: long sum in (0, +gross/2] and short sum = -long sum.
    """
    limits = limits or PortfolioLimits()
    tolerance = limits.tolerance
    _require_columns(weights, ("ticker", "weight"), "weights")
    _require_columns(meta, ("ticker", "sector", "country", "adv_usd"), "meta")
    held = weights.filter(pl.col("weight") != 0)
    meta_columns = [c for c in ("ticker", "sector", "country", "adv_usd", "corr_group") if c in meta.columns]
    joined = held.select([c for c in held.columns if c == "ticker" or c not in meta_columns]).join(
        meta.select(meta_columns), on="ticker", how="left"
    )
    breaches: list[str] = []

    missing = joined.filter(
        pl.col("sector").is_null() | pl.col("country").is_null() | pl.col("adv_usd").is_null()
    )
    if missing.height:
        breaches.append(f"metadata missing for held names: {missing['ticker'].to_list()[:10]}")
    for row in held.filter(pl.col("weight").abs() > limits.max_name_weight + tolerance).iter_rows(named=True):
        breaches.append(
            f"max_name_weight={limits.max_name_weight}: {row['ticker']} |w|={abs(row['weight']):.6f}"
        )
    for row in joined.filter(pl.col("adv_usd") < limits.min_adv_usd).iter_rows(named=True):
        breaches.append(
            f"min_adv_usd={limits.min_adv_usd:,.0f}: {row['ticker']} adv_usd={row['adv_usd']:,.0f}"
        )
    for column, cap_name in GROUP_LIMITS:
        if column not in joined.columns:
            continue
        cap = getattr(limits, cap_name)
        exposure = joined.group_by(column).agg(gross=pl.col("weight").abs().sum())
        for row in exposure.filter(pl.col("gross") > cap + tolerance).sort(column).iter_rows(named=True):
            breaches.append(f"{cap_name}={cap}: {column} {row[column]} gross={row['gross']:.6f}")
    long_sum = float(held.filter(pl.col("weight") > 0)["weight"].sum())
    short_sum = float(held.filter(pl.col("weight") < 0)["weight"].sum())
    if limits.hold_cash and held.height:
        if long_sum > limits.book_gross + tolerance:
            breaches.append(f"long book sums to {long_sum:.10f}, above +{limits.book_gross}")
        if abs(long_sum + short_sum) > tolerance:
            breaches.append(f"book not dollar-neutral: long {long_sum:.10f}, short {short_sum:.10f}")
        return breaches
    if abs(long_sum - limits.book_gross) > tolerance:
        breaches.append(f"long book sums to {long_sum:.10f}, expected +{limits.book_gross}")
    if abs(short_sum + limits.book_gross) > tolerance:
        breaches.append(f"short book sums to {short_sum:.10f}, expected -{limits.book_gross}")
    return breaches


def wide_returns(
    long_returns: pl.DataFrame, *, value: str = "ret", date: str = "trade_date", ticker: str = "ticker"
) -> pl.DataFrame:
    """Pivot a long (date, ticker, return) frame into the wide date × ticker frame the builders take."""
    return long_returns.pivot(on=ticker, index=date, values=value).sort(date)


def _returns_by_ticker(returns: Any, alpha: pl.DataFrame) -> dict[str, np.ndarray]:
    if isinstance(returns, pl.DataFrame):
        tickers = set(alpha["ticker"].to_list())
        columns = [c for c, dtype in returns.schema.items() if c in tickers and dtype.is_numeric()]
        matrix = returns.select(columns).to_numpy().astype(np.float64)
        return {c: matrix[:, i] for i, c in enumerate(columns)}
    matrix = np.asarray(returns, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] != alpha.height:
        raise ValueError(
            f"a returns array must be T×N with N = {alpha.height} alpha rows, got {matrix.shape}"
        )
    return {t: matrix[:, i] for i, t in enumerate(alpha["ticker"].to_list())}


def _sizeable_tickers(history: dict[str, np.ndarray]) -> list[str]:
    """Tickers with a complete, non-constant history of at least two days."""
    return [t for t, r in history.items() if r.size >= 2 and np.isfinite(r).all() and np.ptp(r) > 0]


def _codes(values: pl.Series) -> np.ndarray:
    """Dense integer codes 0..k-1 of a column's values (nulls form their own group)."""
    return values.cast(pl.String).fill_null("<null>").rank("dense").to_numpy().astype(np.int64) - 1


def _require_columns(frame: pl.DataFrame, columns: tuple[str, ...], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} is missing columns {missing}")


__all__ = [
    "InfeasibleLimitsError",
    "PortfolioLimits",
    "build_target_weights",
    "cap_book_weights",
    "check_limits",
    "correlation_groups",
    "invested_share",
    "max_invested_gross",
    "select_books",
    "wide_returns",
]
