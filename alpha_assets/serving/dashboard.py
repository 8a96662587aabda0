"""The fund's dashboard: server-rendered pages (Fund, Book, Risk, Models, Pipeline, Reports) with Plotly charts over
the serving store, mounted at ``/`` on the API app (`alpha dashboard`).

Each page is plain HTML from the read layer the API uses (``ServingReader``); the charts are Plotly figures
rendered to ``<div>``s, and plotly.js is served from the Python package at ``/static/plotly.min.js`` (no CDN, no
Node). Readable at a glance: returns and weights as percentages, NAV and P&L with thousands separators, a title
and axis labels on every chart. An empty store shows how to fill it instead of an error.

Reports shows the latest picture of each of the pipeline's plots (the HRP tree, the model report's and the
backtest's charts, the SHAP plots), which the assets that draw them store in the serving store's ``plots`` table;
each has an anchor (its name: ``/reports#hrp_dendrogram``, the link in the asset's Dagster metadata) and its bytes at
``/reports/<name>.png``, looked up by name in the store (never a path).

Every page's header names the publication it shows (``as of`` the trading day, ``published`` when, UTC) and, when
the lake is readable and holds book days not published yet, a warning banner says how many sessions behind the
page is and how to publish them (``freshness.py``).
"""

import html
from collections.abc import Callable
from datetime import date
from functools import cache

import polars as pl

from alpha_assets.lib.backtest.validation import sharpe_ratio
from alpha_assets.lib.settings import SESSIONS_PER_YEAR
from alpha_assets.serving.reader import EmptyStore, NoBook, ServingReader

PAGES = [
    ("/", "Fund"),
    ("/book", "Book"),
    ("/risk", "Risk"),
    ("/models", "Models"),
    ("/pipeline", "Pipeline"),
    ("/reports", "Reports"),
]
ALL_HISTORY = date(1900, 1, 1)
LONG, SHORT, NET, LIMIT = "#1f77b4", "#d62728", "#2ca02c", "#7f7f7f"

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
nav{background:#14213d;padding:0 24px;display:flex;gap:4px;align-items:center}
nav b{color:#fca311;margin-right:24px;font-size:18px}
nav a{color:#e5e5e5;text-decoration:none;padding:14px 12px;display:inline-block}
nav a.on{background:#fca311;color:#14213d;font-weight:600}
main{padding:16px 24px;max-width:1400px}
h1{font-size:22px;margin:8px 0 4px} .sub{color:#666;margin:0 0 12px}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:12px} .card{background:#fff;border:1px solid #e3e3e3;
border-radius:6px;padding:8px;margin-bottom:12px;overflow-x:auto}
table{border-collapse:collapse;font-size:13px;width:100%} th,td{padding:4px 8px;border-bottom:1px solid #eee;
text-align:right} th{background:#f3f3f3;position:sticky;top:0} td.l,th.l{text-align:left}
.kpis{display:flex;gap:12px;flex-wrap:wrap;margin-bottom:12px} .kpi{background:#fff;border:1px solid #e3e3e3;
border-radius:6px;padding:8px 14px} .kpi b{display:block;font-size:20px}
.empty{background:#fff3cd;border:1px solid #ffe69c;padding:24px;border-radius:6px;font-size:16px}
.pos{color:#1a7f37} .neg{color:#c62828} .scroll{max-height:640px;overflow-y:auto}
.stamp{background:#e9ecf2;color:#333;padding:6px 24px;font-size:13px}
.behind{background:#fff3cd;border-bottom:1px solid #ffe69c;color:#664d03;padding:8px 24px;font-weight:600}
.plot h2{font-size:17px;margin:4px 0} .plot img{max-width:100%;height:auto;display:block} .toc a{margin-right:12px}
"""
NO_PLOTS = (
    "no plots in the serving store yet: the assets that draw them store each picture as they run (the HRP "
    "tree with portfolio/target_weights, the model report, the backtest, the SHAP plots): run `make demo`"
)


def mount_dashboard(app, reader: ServingReader) -> None:
    """Add the dashboard's pages and the packaged plotly.js to ``app`` (its ``state.lag``: how far behind)."""
    from fastapi import Query, Request
    from fastapi.responses import HTMLResponse, PlainTextResponse, Response

    from alpha_assets.serving.freshness import PublicationLag, stamp_headers

    lag = getattr(app.state, "lag", None) or PublicationLag(reader, lake=None)

    def page(path: str, title: str, build: Callable[[], str], day: date | None = None) -> HTMLResponse:
        try:
            body, status = build(), 200
        except EmptyStore as e:
            body, status = f'<div class="empty">{html.escape(str(e))}</div>', 200
        except NoBook as e:
            body, status = f'<div class="empty">{html.escape(str(e))}</div>', 404
        stamp = publication_stamp(reader, day)
        state = lag.get()
        headers = stamp_headers(stamp["as_of"], stamp["published_at"], state) if stamp else {}
        return HTMLResponse(_layout(path, title, body, stamp, state), status_code=status, headers=headers)

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly_js() -> Response:
        return Response(
            _plotly_js(),
            media_type="application/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def fund_page():
        return page("/", "Fund", lambda: fund(reader))

    @app.get("/book", response_class=HTMLResponse, include_in_schema=False)
    def book_page(day: str | None = Query(None, alias="date")):
        try:
            shown = date.fromisoformat(day) if day else None
        except ValueError:
            shown = None
        return page("/book", "Book", lambda: book(reader, day), shown)

    @app.get("/risk", response_class=HTMLResponse, include_in_schema=False)
    def risk_page():
        return page("/risk", "Risk", lambda: risk(reader))

    @app.get("/models", response_class=HTMLResponse, include_in_schema=False)
    def models_page():
        return page("/models", "Models", lambda: models(reader))

    @app.get("/pipeline", response_class=HTMLResponse, include_in_schema=False)
    def pipeline_page():
        return page("/pipeline", "Pipeline", lambda: pipeline(reader))

    @app.get("/reports", response_class=HTMLResponse, include_in_schema=False)
    def reports_page():
        return page("/reports", "Reports", lambda: reports(reader))

    @app.get("/reports/{name}.png", include_in_schema=False)
    def plot_image(name: str, request: Request) -> Response:
        """The stored PNG of the plot ``name``: looked up by name in the serving store (a name that is not a plot
        name is not looked up at all), 404 with one line when there is none."""
        from alpha_assets.serving.store import PLOT_NAME, iso_utc

        stored = reader.plot_png(name) if PLOT_NAME.match(name) else None
        if stored is None:
            shown = name if len(name) <= 64 else name[:64] + "..."
            return PlainTextResponse(
                f"no plot named {shown!r} in the serving store (the Reports page, /reports, "
                "lists the plots there are)",
                status_code=404,
            )
        png, written_at = stored
        etag = f'"{name}-{iso_utc(written_at)}"'
        headers = {"Cache-Control": "private, no-cache", "ETag": etag}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(png, media_type="image/png", headers=headers)


@cache
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def publication_stamp(reader: ServingReader, day: date | None = None) -> dict | None:
    """{'as_of', 'published_at'} of the day a page shows (default the newest published); None when nothing is."""
    from alpha_assets.serving.store import iso_utc

    try:
        shown = day or reader.newest_day()
        pub = reader.publication(shown)
    except EmptyStore:
        return None
    if pub is None:  # a day that was not published (the page says so)
        return None
    return {"as_of": shown, "published_at": iso_utc(pub["published_at"])}


def _layout(path: str, title: str, body: str, stamp: dict | None = None, lag: dict | None = None) -> str:
    from alpha_assets.serving.freshness import behind_message

    links = "".join(f'<a href="{p}"{" class=on" if p == path else ""}>{n}</a>' for p, n in PAGES)
    header = ""
    if stamp:
        header = (
            f'<div class="stamp" id="stamp">as of <b id="as-of">{stamp["as_of"]}</b> · published '
            f'<span id="published-at">{stamp["published_at"] or "unknown"}</span>'
        )
        if lag and lag.get("behind_sessions") == 0:
            header += " · up to date with the lake"
        header += "</div>"
    warning = behind_message(lag)
    if warning:
        header += f'<div class="behind" id="behind" role="alert">{html.escape(warning)}</div>'
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{title} · alpha-assets</title>"
        f'<link rel=icon href="data:,"><meta name=viewport content="width=device-width,initial-scale=1"><style>{STYLE}</style>'
        f'<script src="/static/plotly.min.js"></script></head><body><nav><b>alpha-assets</b>{links}</nav>'
        f"{header}<main>{body}</main></body></html>"
    )


# ------------------------------------------------------------------------------------------------ charts
def _figure(fig, div_id: str, height: int = 360) -> str:
    fig.update_layout(
        height=height,
        margin={"l": 70, "r": 20, "t": 50, "b": 50},
        template="plotly_white",
        legend={"orientation": "h", "y": -0.18},
        hovermode="x unified",
    )
    div = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        config={"displaylogo": False, "responsive": True},
    )
    return f'<div class="card">{div}</div>'


def _go():
    import plotly.graph_objects as go

    return go


def _frame(rows: list[dict]) -> pl.DataFrame:
    df = pl.DataFrame(rows, infer_schema_length=None)
    if "trade_date" in df.columns and df.schema["trade_date"] == pl.String:
        df = df.with_columns(pl.col("trade_date").str.to_date())
    return df


def _pct(v: float | None, digits: int = 1) -> str:
    return "" if v is None else f"{round(v * 100, digits) + 0.0:.{digits}f}%"  # + 0.0: no "-0.0%"


def _signed(v: float | None, text: str) -> str:
    cls = "" if v is None or v == 0 else ("pos" if v > 0 else "neg")
    return f'<td class="{cls}">{text}</td>'


def _count_axis(title: str, top: float | None) -> dict:
    """Whole-number ticks (no 0.5 steps rounding to repeated labels on small counts)."""
    return {
        "title": title,
        "tickformat": ",d",
        "rangemode": "tozero",
        "dtick": max(1, -(-int(top or 0) // 6)),
    }


def _kpis(items: list[tuple[str, str]]) -> str:
    return (
        '<div class="kpis">' + "".join(f'<div class="kpi">{k}<b>{v}</b></div>' for k, v in items) + "</div>"
    )


def _table(
    headers: list[str], rows: list[list[str]], left: tuple[int, ...] = (0,), scroll: bool = False
) -> str:
    """An HTML table; columns in ``left`` (text) align left, the rest (numbers) right."""
    head = "".join(f'<th class="{"l" if i in left else ""}">{h}</th>' for i, h in enumerate(headers))
    body = "".join(
        "<tr>"
        + "".join(
            c if c.startswith("<td") else f'<td class="{"l" if i in left else ""}">{c}</td>'
            for i, c in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    cls = "card scroll" if scroll else "card"
    return f'<div class="{cls}"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


# ------------------------------------------------------------------------------------------------- pages
def fund(reader: ServingReader) -> str:
    go = _go()
    _, end, rows = reader.performance(ALL_HISTORY, None)
    perf = _frame(rows)
    last = perf.row(-1, named=True)
    cum_ret = last["nav"] / (perf["nav"][0] - perf["net_pnl"][0]) - 1
    vol = perf["net_return"].std() * SESSIONS_PER_YEAR**0.5 if perf.height > 2 else None
    sharpe = (
        sharpe_ratio(perf["net_return"].to_numpy(), periods_per_year=SESSIONS_PER_YEAR)
        if perf.height > 2
        else None
    )
    out = [
        f"<h1>Fund</h1><p class=sub>{perf['trade_date'][0]} to {end} · {perf.height} sessions</p>",
        _kpis(
            [
                ("NAV", f"{last['nav']:,.0f}"),
                ("return since start", _pct(cum_ret)),
                ("drawdown", _pct(last["drawdown"])),
                ("max drawdown", _pct(perf["drawdown"].min())),
                ("annualised volatility", _pct(vol)),
                ("Sharpe (net)", "" if sharpe is None else f"{sharpe:.2f}"),
            ]
        ),
    ]
    x = perf["trade_date"].to_list()
    nav = go.Figure(go.Scatter(x=x, y=perf["nav"].to_list(), name="NAV", line={"color": LONG}))
    nav.update_layout(
        title="Net asset value", yaxis={"title": "NAV", "tickformat": ",.0f"}, xaxis={"title": "trading day"}
    )
    dd = go.Figure(
        go.Scatter(x=x, y=perf["drawdown"].to_list(), name="drawdown", fill="tozeroy", line={"color": SHORT})
    )
    dd.update_layout(
        title="Drawdown from the running peak",
        yaxis={"title": "drawdown", "tickformat": ".1%"},
        xaxis={"title": "trading day"},
    )
    pnl = go.Figure(
        [
            go.Scatter(x=x, y=perf["gross_pnl"].cum_sum().to_list(), name="gross P&L"),
            go.Scatter(x=x, y=perf["net_pnl"].cum_sum().to_list(), name="net P&L (after costs)"),
            go.Scatter(x=x, y=(-perf["costs"]).cum_sum().to_list(), name="costs", line={"dash": "dot"}),
        ]
    )
    pnl.update_layout(
        title="Cumulative P&L: gross vs net of costs",
        yaxis={"title": "P&L", "tickformat": ",.0f"},
        xaxis={"title": "trading day"},
    )
    out.append('<div class="grid">' + _figure(nav, "fund-nav") + _figure(dd, "fund-drawdown") + "</div>")
    out.append(
        '<div class="grid">'
        + _figure(pnl, "fund-pnl")
        + _exposure_chart(reader, None, "fund-exposures")
        + "</div>"
    )
    out.append("<h1>Monthly returns (net)</h1>" + monthly_returns_table(perf))
    return "".join(out)


def monthly_returns(perf: pl.DataFrame) -> pl.DataFrame:
    """Compounded net return per (year, month), and per year."""
    by_month = perf.group_by(
        pl.col("trade_date").dt.year().alias("year"), pl.col("trade_date").dt.month().alias("month")
    ).agg(((pl.col("net_return") + 1).product() - 1).alias("ret"))
    return by_month.sort("year", "month")


def monthly_returns_table(perf: pl.DataFrame) -> str:
    months = monthly_returns(perf)
    names = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    rows = []
    for year in sorted(months["year"].unique().to_list()):
        got = {m: r for m, r in months.filter(pl.col("year") == year).select("month", "ret").iter_rows()}
        total = 1.0
        for r in got.values():
            total *= 1 + r
        rows.append(
            [str(year)]
            + [_signed(got.get(m), _pct(got.get(m))) for m in range(1, 13)]
            + [_signed(total - 1, f"<b>{_pct(total - 1)}</b>")]
        )
    return _table(["year", *names, "year"], rows)


def _exposure_chart(reader: ServingReader, day: date | None, div_id: str) -> str:
    """Long, short and net by sector and by country: horizontal bars, so long sector names stay readable."""
    from plotly.subplots import make_subplots

    trade_date, rows = reader.exposures(day)
    ex = _frame(rows)
    parts = [ex.filter(pl.col("dimension") == d).sort("gross") for d in ("sector", "country")]
    fig = make_subplots(
        rows=1, cols=2, shared_xaxes=True, subplot_titles=("by sector", "by country"), horizontal_spacing=0.22
    )
    for col, part in enumerate(parts, start=1):
        y, first = part["bucket"].to_list(), col == 1
        fig.add_bar(
            y=y,
            x=part["long"].to_list(),
            name="long",
            marker_color=LONG,
            legendgroup="long",
            orientation="h",
            showlegend=first,
            row=1,
            col=col,
        )
        fig.add_bar(
            y=y,
            x=part["short"].to_list(),
            name="short",
            marker_color=SHORT,
            legendgroup="short",
            orientation="h",
            showlegend=first,
            row=1,
            col=col,
        )
        fig.add_scatter(
            y=y,
            x=part["net"].to_list(),
            mode="markers",
            name="net",
            legendgroup="net",
            marker={"color": NET, "size": 9, "symbol": "diamond"},
            showlegend=first,
            row=1,
            col=col,
        )
    fig.update_layout(
        title=f"Exposures on {trade_date} (fraction of NAV)", barmode="relative", hovermode="closest"
    )
    fig.update_xaxes(tickformat=".0%", title_text="exposure")
    fig.update_yaxes(automargin=True)
    return _figure(fig, div_id)


def book(reader: ServingReader, day_text: str | None) -> str:
    go = _go()
    day = None
    if day_text:
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            raise NoBook(f"date={day_text!r} is not a date (YYYY-MM-DD)") from None
    trade_date, rows = reader.positions(day)
    days = reader.published_days()
    options = "".join(
        f'<option value="{d}"{" selected" if d == trade_date else ""}>{d}</option>' for d in reversed(days)
    )
    picker = (
        f'<form method=get action="/book" class="card">Book of <select name=date id=book-date '
        f'onchange="this.form.submit()">{options}</select> <noscript><button>show</button></noscript></form>'
    )
    pos = _frame(rows)
    longs, shorts = pos.filter(pl.col("weight") > 0), pos.filter(pl.col("weight") < 0)
    out = [
        f"<h1>Book on {trade_date}</h1>",
        picker,
        _kpis(
            [
                ("names", f"{pos.height:,}"),
                ("long", f"{longs.height} · {_pct(longs['weight'].sum())}"),
                ("short", f"{shorts.height} · {_pct(shorts['weight'].sum())}"),
                ("gross", _pct(pos["weight"].abs().sum())),
                ("net", _pct(pos["weight"].sum())),
            ]
        ),
    ]
    top = pos.sort(pl.col("weight").abs(), descending=True).head(30).sort("weight", descending=True)
    bars = go.Figure(
        go.Bar(
            x=top["ticker"].to_list(),
            y=top["weight"].to_list(),
            marker_color=[LONG if w > 0 else SHORT for w in top["weight"].to_list()],
            customdata=top["sector"].to_list(),
            hovertemplate="%{x} (%{customdata}): %{y:.2%}<extra></extra>",
        )
    )
    bars.update_layout(
        title="The 30 largest positions by |weight|",
        hovermode="closest",
        yaxis={"title": "weight (fraction of NAV)", "tickformat": ".1%"},
        xaxis={"title": "name"},
    )
    out.append(
        '<div class="grid">'
        + _figure(bars, "book-weights")
        + _exposure_chart(reader, trade_date, "book-exposures")
        + "</div>"
    )
    table_rows = []
    for r in rows:
        feats = (
            ", ".join(f"{html.escape(f['feature'])} ({f['shap_value']:+.4f})" for f in r["top_features"])
            or "—"
        )
        table_rows.append(
            [
                html.escape(r["ticker"]),
                r["side"],
                _signed(r["weight"], _pct(r["weight"], 2)),
                html.escape(r["sector"] or ""),
                html.escape(r["country"] or ""),
                "" if r["alpha_score"] is None else f"{r['alpha_score']:+.3f}",
                f'<td class="l">{feats}</td>',
            ]
        )
    out.append(
        "<h1>Positions</h1>"
        + _table(
            ["ticker", "side", "weight", "sector", "country", "alpha score", "top SHAP features (value)"],
            table_rows,
            left=(0, 1, 3, 4, 6),
            scroll=True,
        )
    )
    return "".join(out)


def risk(reader: ServingReader) -> str:
    go = _go()
    trade_date, summary, history = reader.risk(None)
    h = _frame(history)
    x = h["trade_date"].to_list()
    var = go.Figure(
        [
            go.Scatter(x=x, y=h["var_1d"].to_list(), name="VaR 1-day", line={"color": LONG}),
            go.Scatter(x=x, y=h["es_1d"].to_list(), name="ES 1-day", line={"color": "#9467bd"}),
            go.Scatter(
                x=x, y=h["var_limit"].to_list(), name="VaR limit", line={"color": SHORT, "dash": "dash"}
            ),
        ]
    )
    var.update_layout(
        title="1-day VaR and ES vs the VaR limit",
        yaxis={"title": "fraction of NAV", "tickformat": ".1%"},
        xaxis={"title": "trading day"},
    )
    usage = go.Figure(
        [
            go.Scatter(x=x, y=h["var_limit_usage"].to_list(), name="VaR limit usage"),
            go.Scatter(x=x, y=h["gross_limit_usage"].to_list(), name="gross limit usage"),
        ]
    )
    usage.add_hline(y=1.0, line={"color": LIMIT, "dash": "dash"}, annotation_text="limit")
    usage.update_layout(
        title="Limit usage (100% = at the limit)",
        yaxis={"title": "usage", "tickformat": ".0%"},
        xaxis={"title": "trading day"},
    )
    breaches = summary.get("breaches") or "none"
    out = [
        f"<h1>Risk on {trade_date}</h1>",
        _kpis(
            [
                ("VaR 1-day", _pct(summary["var_1d"], 2)),
                ("ES 1-day", _pct(summary["es_1d"], 2)),
                ("VaR 5-day", _pct(summary["var_5d"], 2)),
                ("VaR limit usage", _pct(summary["var_limit_usage"])),
                ("gross limit usage", _pct(summary["gross_limit_usage"])),
                ("drawdown", _pct(summary["drawdown"])),
                ("drawdown state", html.escape(str(summary["drawdown_state"]))),
                ("breaches", html.escape(breaches)),
            ]
        ),
        '<div class="grid">' + _figure(var, "risk-var") + _figure(usage, "risk-usage") + "</div>",
    ]
    return "".join(out)


def models(reader: ServingReader) -> str:
    go = _go()
    trade_date, today, history = reader.models()
    out = [f"<h1>Models on {trade_date}</h1>"]
    if not history:
        return out[0] + '<div class="empty">no model KPIs published yet (the model layer has not run)</div>'
    h = _frame(history).sort("trade_date")
    ic = go.Figure()
    for (model, recipe), part in h.group_by("model", "recipe", maintain_order=True):
        rolling = part["ic_1"].rolling_mean(window_size=20, min_samples=5)
        ic.add_scatter(
            x=part["trade_date"].to_list(),
            y=rolling.to_list(),
            name=f"{model} ({recipe})",
            mode="lines",
            line={"dash": "solid" if recipe == h["recipe"][0] else "dot"},
        )
    ic.add_hline(y=0.0, line={"color": LIMIT})
    ic.update_layout(
        title="Information coefficient per model (1-day, 20-session mean)",
        yaxis={"title": "IC", "tickformat": ".2f"},
        xaxis={"title": "trading day"},
    )
    drift = h.group_by("trade_date").agg(pl.col("drifted_features").max()).sort("trade_date")
    dfig = go.Figure(
        go.Bar(
            x=drift["trade_date"].to_list(),
            y=drift["drifted_features"].to_list(),
            name="drifted features",
            marker_color="#ff7f0e",
        )
    )
    dfig.update_layout(
        title="Features flagged by the drift monitor (PSI > 0.2)",
        yaxis=_count_axis("features", drift["drifted_features"].max()),
        xaxis={"title": "trading day"},
    )
    out.append('<div class="grid">' + _figure(ic, "models-ic") + _figure(dfig, "models-drift") + "</div>")
    rows = [
        [
            html.escape(m["model"]),
            html.escape(m["recipe"]),
            "yes" if m["champion"] else "",
            "" if m["ic_1"] is None else f"{m['ic_1']:+.3f}",
            "" if m["ic_20"] is None else f"{m['ic_20']:+.3f}",
            _pct(m["ensemble_weight"]),
            html.escape(str(m["status"] or "")),
            str(m["drifted_features"] or 0),
        ]
        for m in today
    ]
    out.append(
        _table(
            [
                "model",
                "recipe",
                "champion",
                "IC 1-day",
                "IC 20-day",
                "ensemble weight",
                "status",
                "drifted features",
            ],
            rows,
            left=(0, 1, 2, 6),
        )
    )
    return "".join(out)


def pipeline(reader: ServingReader) -> str:
    go = _go()
    trade_date, today, history = reader.pipeline()
    h = _frame(history).sort("trade_date")
    t = sorted(today, key=lambda r: r["asset"])
    fresh = go.Figure(
        go.Bar(
            x=[r["asset"] for r in t],
            y=[r["freshness_hours"] for r in t],
            marker_color=LONG,
            name="freshness",
        )
    )
    fresh.update_layout(
        title=f"Freshness on {trade_date}: hours after the session close",
        yaxis={"title": "hours", "tickformat": ",.1f"},
        xaxis={"title": "asset"},
    )
    daily = (
        h.group_by("trade_date")
        .agg(pl.col("failovers").sum(), pl.col("quarantined_files").sum())
        .sort("trade_date")
    )
    faults = go.Figure(
        [
            go.Bar(
                x=daily["trade_date"].to_list(),
                y=daily["failovers"].to_list(),
                name="price fields failed over to vendor B",
                marker_color="#ff7f0e",
            ),
            go.Bar(
                x=daily["trade_date"].to_list(),
                y=daily["quarantined_files"].to_list(),
                name="files quarantined",
                marker_color=SHORT,
            ),
        ]
    )
    faults.update_layout(
        title="Vendor failovers and quarantined files per day",
        barmode="group",
        yaxis=_count_axis("count", max(daily["failovers"].max() or 0, daily["quarantined_files"].max() or 0)),
        xaxis={"title": "trading day"},
    )
    runs = go.Figure()
    for (asset,), part in h.group_by("asset", maintain_order=True):
        runs.add_scatter(
            x=part["trade_date"].to_list(), y=part["run_seconds"].to_list(), name=asset, mode="lines"
        )
    runs.update_layout(
        title="Step duration per asset (the run that last materialized each day; a range run's whole step)",
        yaxis={"title": "seconds", "tickformat": ",.1f"},
        xaxis={"title": "trading day"},
    )
    out = [
        f"<h1>Pipeline on {trade_date}</h1>",
        _kpis(
            [
                ("assets", str(len(t))),
                ("failovers", f"{sum(r['failovers'] or 0 for r in t):,}"),
                ("quarantined files", f"{sum(r['quarantined_files'] or 0 for r in t):,}"),
                ("stalest asset", f"{max((r['freshness_hours'] or 0) for r in t):,.1f} h" if t else ""),
            ]
        ),
        '<div class="grid">'
        + _figure(fresh, "pipeline-freshness")
        + _figure(faults, "pipeline-faults")
        + "</div>",
        _figure(runs, "pipeline-runs", height=420),
    ]
    rows = [
        [
            html.escape(r["asset"]),
            f"{r['run_seconds'] or 0:,.1f}",
            f"{r['rows_written'] or 0:,}",
            str(r["materialized_at"] or "")[:19],
            f"{r['freshness_hours'] or 0:,.1f}",
            str(r["failovers"] or 0),
            str(r["quarantined_files"] or 0),
        ]
        for r in t
    ]
    out.append(
        _table(
            [
                "asset",
                "step seconds",
                "rows written",
                "materialized at (UTC)",
                "freshness hours",
                "failovers",
                "quarantined files",
            ],
            rows,
            left=(0, 3),
        )
    )
    return "".join(out)


def reports(reader: ServingReader) -> str:
    """The latest picture of every stored plot, each under its anchor (its name) with its title, the asset that
    drew it, the run's partition, the day it shows and when it was written (UTC)."""
    from alpha_assets.serving.store import iso_utc

    plots = reader.plots()
    if not plots:
        raise EmptyStore(NO_PLOTS)
    toc = " ".join(f'<a href="#{html.escape(p["name"])}">{html.escape(p["title"])}</a>' for p in plots)
    out = [
        f"<h1>Reports</h1><p class=sub>The latest picture of each plot the pipeline draws ({len(plots)} stored), "
        "as the asset that drew it stored it</p>",
        f'<div class="card toc">{toc}</div>',
    ]
    for p in plots:
        name, title = html.escape(p["name"]), html.escape(p["title"])
        facts = [f"asset <code>{html.escape(p['asset_key'])}</code>"]
        if p["partition_key"]:
            facts.append(f"partition {html.escape(p['partition_key'])}")
        if p["trade_date"] is not None:
            facts.append(f"day {str(p['trade_date'])[:10]}")
        written = (iso_utc(p["written_at"]) or "").replace("T", " ")[:19]
        facts.append(f'written <span class="written">{written} UTC</span>')
        out.append(
            f'<section class="card plot" id="{name}"><h2>{title}</h2><p class=sub>{" · ".join(facts)}</p>'
            f'<img src="/reports/{name}.png" alt="{title}" loading="lazy"></section>'
        )
    return "".join(out)
