"""Demo-world vendor of earnings-call transcripts and regulatory filings.

Writes text files the way a transcript / filings vendor would deliver them:

- ``landing/transcripts/<TICKER>_<YYYY-MM-DD>.txt``: one earnings call per ticker per quarter (calls spread over
  the year by a per-ticker phase), with a header, a "Prepared Remarks" and a "Question-and-Answer Session"
  section and speaker turns (Operator, CEO, CFO, investor relations, analysts). Management sentences are drawn
  from positive / neutral / negative phrase templates in proportions set by the latent ``management_tone``
  driver on the call date.
- ``landing/filings/<TICKER>_<10-K|10-Q>_<YYYY-MM-DD>.txt``: one annual 10-K-like and three quarterly
  10-Q-like filings per ticker per year, with Item 1A Risk Factors and an MD&A section (Item 7 in a 10-K,
  Item 2 in a 10-Q, as in real filings) whose length and negativity grow with the latent ``filing_risk``
  driver. Heading styles vary by company so the parser meets more than one layout.

Ground truth (what the pipeline must rediscover, never read by it) goes to ``truth/transcript_tone.parquet``
and ``truth/filing_risk.parquet``, with each document's ``published_at``: when the pipeline's point-in-time rules
(``alpha_assets.lib.altdata.point_in_time``) make it usable. A call is dated by its end (start + one hour, the
transcript assets' ``CALL_LENGTH``) plus the transcript vendor's lag, so a 4:30 PM ET call is first usable the next
session; a filing by the filings source's default acceptance time plus its lag (after the 22:00 UTC cut-off).

The phrase templates here are deliberately *not* the sentences of the labelled training set shipped with
``alpha_assets.lib.altdata.nlp`` (``financial_sentences.csv``): that set was written separately, with its own
wording, so a sentiment head trained on it and scored on these transcripts is tested out of sample. A unit test
checks the two stay apart.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from alpha_assets.lib.altdata import point_in_time as pit

__all__ = [
    "NEGATIVE_PHRASES",
    "NEUTRAL_PHRASES",
    "POSITIVE_PHRASES",
    "generate_filings",
    "generate_transcripts",
    "render_phrase",
]

CALLS_PER_YEAR_SESSIONS = 63  # about one quarter of XNYS sessions
CALL_LENGTH = timedelta(hours=1)  # the transcript assets date a call by its end: start + this
_EASTERN = ZoneInfo("America/New_York")
_CALL_TIME = re.compile(r"^Call time: (\d{1,2}):(\d{2}) (AM|PM) ET$", re.MULTILINE)

# --- phrase templates ------------------------------------------------------------------------------------
# Slots: {metric}, {pct}, {bps}, {segment}, {region}, {driver}, {quarter}.

POSITIVE_PHRASES: tuple[str, ...] = (
    "We delivered a record quarter, with {metric} up {pct} percent year over year.",
    "{segment} had an outstanding quarter and outgrew the market again.",
    "Demand in {region} accelerated through the quarter and exited at the strongest run rate we have seen.",
    "We are raising our full-year outlook for {metric} on the back of this momentum.",
    "Margins expanded by {bps} basis points as pricing and mix came through better than planned.",
    "Our backlog is at an all-time high, which gives us excellent visibility into next year.",
    "Customer retention improved again and new logo wins were the best in company history.",
    "We generated very strong free cash flow and used it to accelerate the share repurchase program.",
    "The launch of our new platform in {region} has exceeded every internal milestone.",
    "{driver} turned into a tailwind this quarter and we expect it to keep helping.",
    "We beat the top end of our guidance range on both {metric} and earnings per share.",
    "Productivity gains in {segment} are running well ahead of our plan.",
    "I am very proud of the team: execution was excellent across every business line.",
    "Order intake grew {pct} percent, a clear sign that our share gains are durable.",
    "We see a long runway of profitable growth and are investing from a position of strength.",
    "Our balance sheet has never been healthier, and leverage is now below our target.",
    "Pricing actions stuck, and we saw no meaningful customer pushback.",
    "Gross margin reached a new high, up {bps} basis points from a year ago.",
    "Early data from {region} tells us the new product cycle will be our biggest yet.",
    "We are increasing the dividend by {pct} percent, reflecting our confidence in cash generation.",
    "Utilization in {segment} is at peak levels and lead times are shortening.",
    "The integration of the acquisition is ahead of schedule and synergies are above target.",
    "Every region posted double-digit growth in {metric}.",
    "Our pipeline has never been this deep, and conversion rates keep climbing.",
    "We are confident we will hit the upper end of our long-term margin framework early.",
)

NEUTRAL_PHRASES: tuple[str, ...] = (
    "Turning to {metric}, the detailed breakdown is in the supplementary tables.",
    "As a reminder, all comparisons are against the same quarter of the prior year unless I say otherwise.",
    "{segment} represented roughly {pct} percent of consolidated revenue in the period.",
    "We will host our investor day in {region} later this year and share the details in due course.",
    "Capital expenditures were in line with the plan we outlined at the start of the year.",
    "The effective tax rate for {quarter} was consistent with our annual estimate.",
    "Our reporting segments are unchanged from last quarter.",
    "Share count at period end was broadly flat versus the prior quarter.",
    "I will now walk through the results by segment before turning to the outlook.",
    "Foreign exchange had an immaterial effect on reported {metric}.",
    "We continue to allocate capital according to the priorities we have described before.",
    "Inventory days were about where we expected given the seasonal pattern in {segment}.",
    "The reconciliation of non-GAAP measures is included in the press release.",
    "Working capital moved in line with the usual seasonality of the business.",
    "We completed the previously announced reorganization of the {region} sales team.",
    "Headcount ended the period at a level similar to the start of the year.",
    "Interest expense reflects the refinancing we completed last year.",
    "Our guidance assumes current exchange rates hold for the rest of the year.",
    "We expect {quarter} to follow the normal seasonal pattern for {segment}.",
    "Depreciation and amortization were roughly {pct} percent of sales.",
    "The board approved the regular quarterly dividend at the existing rate.",
    "Most of our contracts in {region} renew in the second half of the year.",
    "We will update the market on {driver} when we report next quarter.",
    "Our accounting policies are unchanged from the annual report.",
    "Let me hand over to our finance chief for more detail on the numbers.",
)

NEGATIVE_PHRASES: tuple[str, ...] = (
    "{metric} fell {pct} percent year over year and came in below our expectations.",
    "{segment} had a disappointing quarter, with volumes down sharply.",
    "Demand in {region} weakened through the quarter and we exited at a soft run rate.",
    "We are lowering our full-year outlook for {metric} to reflect the slowdown.",
    "Margins contracted by {bps} basis points as cost inflation outpaced our pricing.",
    "Backlog declined for the third consecutive quarter, which limits our visibility.",
    "Customer churn rose and several large renewals slipped out of the period.",
    "Free cash flow was negative, and we are pausing the share repurchase program.",
    "The rollout in {region} is behind schedule and costs are running over budget.",
    "{driver} became a significant headwind and we expect pressure to persist.",
    "We missed the low end of our guidance range on both {metric} and earnings per share.",
    "We recorded an impairment charge related to the underperforming {segment} business.",
    "Execution fell short of our standards and we own that.",
    "Order intake dropped {pct} percent as customers delayed purchasing decisions.",
    "We are taking restructuring actions, including headcount reductions, to protect profitability.",
    "Leverage moved above our target and we are focused on repairing the balance sheet.",
    "Competitors cut prices aggressively and we lost share in key accounts.",
    "Gross margin hit a multi-year low, down {bps} basis points from a year ago.",
    "Supply disruptions in {region} left us unable to ship a meaningful part of demand.",
    "We are suspending guidance until we have better visibility into the recovery.",
    "Inventory built up in {segment} and we will need to take write-downs to clear it.",
    "The integration of the acquisition has been harder than expected and synergies are slipping.",
    "Every region reported a decline in {metric}.",
    "A key customer reduced its orders materially, and we do not expect them back this year.",
    "We are under investigation by the regulator and cannot predict the outcome.",
)

ANALYST_QUESTIONS: tuple[str, ...] = (
    "Could you help us think about how {metric} should trend over the next few quarters?",
    "How should we think about the margin bridge from here?",
    "What are you seeing in {region} so far this quarter?",
    "Can you give more color on the {segment} performance?",
    "How much of the change in {metric} came from price versus volume?",
    "Could you update us on capital allocation priorities?",
    "What assumptions about {driver} are embedded in the guidance?",
    "How are customers behaving in renewal conversations?",
)

OPERATOR_OPENING = (
    "Good day, and welcome to the {company} {quarter} earnings conference call. "
    "At this time, all participants are in a listen-only mode. "
    "After the speakers' presentation, there will be a question-and-answer session."
)
OPERATOR_QA = (
    "We will now begin the question-and-answer session. Our first question comes from {analyst} with {firm}."
)
OPERATOR_NEXT = "Our next question comes from {analyst} with {firm}. Please go ahead."
OPERATOR_CLOSE = (
    "This concludes today's conference call. Thank you for participating, and you may now disconnect."
)
IR_OPENING = (
    "Thank you, operator, and good morning, everyone. "
    "Joining me today are our chief executive officer and our chief financial officer. "
    "Some statements on this call are forward-looking and subject to risks described in our filings."
)

METRICS = (
    "revenue",
    "operating income",
    "adjusted EBITDA",
    "net sales",
    "bookings",
    "recurring revenue",
    "same-store sales",
    "operating cash flow",
)
REGIONS = (
    "North America",
    "Europe",
    "Asia Pacific",
    "Latin America",
    "the Middle East",
    "our domestic market",
)
DRIVERS = (
    "Freight cost",
    "The currency",
    "Raw material pricing",
    "Wage inflation",
    "The interest rate backdrop",
)
SECTOR_SEGMENTS: dict[str, tuple[str, ...]] = {
    "Energy": ("the upstream segment", "the refining business", "the midstream unit"),
    "Materials": ("the specialty chemicals unit", "the packaging business", "the metals division"),
    "Industrials": ("the aerospace segment", "the automation business", "the services division"),
    "Consumer Discretionary": ("the stores business", "the online channel", "the wholesale division"),
    "Consumer Staples": ("the beverages unit", "the household products business", "the food division"),
    "Health Care": ("the devices segment", "the pharmaceuticals business", "the diagnostics unit"),
    "Financials": ("the lending business", "wealth management", "the payments unit"),
    "Information Technology": ("the cloud segment", "the hardware business", "the software division"),
    "Communication Services": ("the advertising business", "the wireless segment", "the streaming unit"),
    "Utilities": ("the regulated utility", "the renewables business", "the gas distribution unit"),
    "Real Estate": ("the office portfolio", "the residential business", "the logistics properties"),
}
DEFAULT_SEGMENTS = ("the core segment", "the international business", "the services division")

FIRST_NAMES = (
    "Avery",
    "Jordan",
    "Morgan",
    "Priya",
    "Daniel",
    "Elena",
    "Marcus",
    "Sofia",
    "Kenji",
    "Grace",
    "Omar",
    "Hannah",
    "Lucas",
    "Mei",
    "Tobias",
    "Ingrid",
)
LAST_NAMES = (
    "Whitfield",
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Tanaka",
    "Reyes",
    "Castellano",
    "Brandt",
    "Nakamura",
    "Kowalski",
    "Haddad",
    "Sorensen",
    "Patel",
    "Delacroix",
    "Ferreira",
    "Abernathy",
)
BROKER_FIRMS = (
    "Northbridge Securities",
    "Halvorsen & Co.",
    "Piermont Capital Markets",
    "Greyline Research",
    "Ashcombe Partners",
    "Tidewater Equity Research",
)

# --- filing templates ------------------------------------------------------------------------------------

RISK_FACTOR_BENIGN: tuple[str, ...] = (
    "Our results may vary from quarter to quarter because of seasonal patterns in {segment}.",
    "We depend on a number of suppliers, and a change in terms could affect our costs.",
    "Changes in accounting standards could affect how we report our results.",
    "We operate in competitive markets and must continue to invest in our products.",
    "Our business in {region} is subject to local laws that may change over time.",
    "We rely on information systems, and an outage could disrupt operations for a time.",
    "Fluctuations in exchange rates affect the translation of our foreign results.",
    "Our success depends in part on attracting and retaining qualified employees.",
)
RISK_FACTOR_SEVERE: tuple[str, ...] = (
    "We have identified a material weakness in our internal control over financial reporting.",
    "We are a defendant in litigation that, if decided against us, could result in substantial damages.",
    "Our lenders could accelerate repayment if we fail to comply with the financial covenants in our credit agreement.",
    "There is substantial doubt about our ability to fund operations without additional financing.",
    "A government investigation into our sales practices in {region} could lead to fines and penalties.",
    "The loss of our largest customer, which accounted for a significant share of revenue, would materially harm us.",
    "We may be required to record further impairment charges on goodwill related to {segment}.",
    "A cyber incident affecting our systems resulted in unauthorized access to customer data.",
    "Our credit rating was downgraded, increasing our borrowing costs and limiting access to capital.",
    "Product recalls in {segment} have damaged our reputation and may reduce future demand.",
    "Rising default rates among our customers could require significantly higher credit loss provisions.",
    "We have incurred net losses in recent periods and may not achieve profitability.",
)
MDNA_POSITIVE: tuple[str, ...] = (
    "Net sales increased {pct} percent, driven by higher volumes in {segment}.",
    "Operating margin improved as productivity initiatives offset cost inflation.",
    "Cash provided by operating activities increased compared with the prior period.",
    "We reduced outstanding borrowings and ended the period with ample liquidity.",
    "Gross profit rose on favorable pricing and product mix.",
)
MDNA_NEUTRAL: tuple[str, ...] = (
    "The following discussion should be read together with the consolidated financial statements.",
    "Selling, general and administrative expenses were {pct} percent of net sales.",
    "Capital expenditures were primarily for maintenance of existing facilities in {region}.",
    "We report our results in three segments, which are described in the notes.",
    "Interest expense reflects the terms of our existing credit facility.",
    "Our critical accounting estimates are unchanged from those described in the annual report.",
)
MDNA_NEGATIVE: tuple[str, ...] = (
    "Net sales decreased {pct} percent, reflecting lower volumes in {segment}.",
    "Operating margin declined as cost inflation and under-absorption more than offset pricing.",
    "Cash used in operating activities increased due to losses and higher working capital.",
    "We drew on our revolving credit facility to fund operating shortfalls.",
    "Gross profit fell because of unfavorable mix, write-downs and restructuring charges.",
    "We recorded impairment and restructuring charges in {segment} during the period.",
)

# Heading styles differ by company (real filings do too); the parser must cope with each.
HEADING_STYLES = (
    "Item {num}. {title}",
    "ITEM {num}. {TITLE}",
    "Item {num}: {title}",
    "ITEM {num} — {TITLE}",
    "Item {num}.\n{title}",
)


@dataclass(frozen=True)
class _Company:
    ticker: str
    name: str
    sector: str
    ceo: str
    cfo: str
    ir: str
    segments: tuple[str, ...]
    phase: int
    heading_style: str


def _logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _ticker_rng(seed: int, ticker: str, salt: int) -> np.random.Generator:
    # a stable per-ticker stream, so adding a ticker to the universe leaves the other tickers' files unchanged
    key = [int(b) for b in ticker.encode("utf-8")]
    return np.random.default_rng([seed, salt, *key])


def render_phrase(template: str, rng: np.random.Generator, segments: tuple[str, ...], when: date) -> str:
    """Fill a phrase template's slots with seeded values."""
    text = template.format(
        metric=METRICS[rng.integers(len(METRICS))],
        pct=int(rng.integers(2, 28)),
        bps=int(rng.integers(3, 30)) * 10,
        segment=segments[rng.integers(len(segments))],
        region=REGIONS[rng.integers(len(REGIONS))],
        driver=DRIVERS[rng.integers(len(DRIVERS))],
        quarter=_quarter_label(when),
    )
    return text[0].upper() + text[1:]


def _quarter_label(when: date) -> str:
    # calls report the quarter that just ended
    q = (when.month - 1) // 3
    year = when.year if q > 0 else when.year - 1
    return f"Q{q if q > 0 else 4} {year}"


def _companies(universe: pl.DataFrame, seed: int, salt: int) -> list[_Company]:
    out = []
    for row in universe.select("ticker", "name", "sector").iter_rows(named=True):
        rng = _ticker_rng(seed, row["ticker"], salt)
        names = [f"{FIRST_NAMES[i]} {LAST_NAMES[j]}" for i, j in rng.integers(0, 16, size=(3, 2))]
        out.append(
            _Company(
                ticker=row["ticker"],
                name=row["name"],
                sector=row["sector"] or "",
                ceo=names[0],
                cfo=names[1],
                ir=names[2],
                segments=SECTOR_SEGMENTS.get(row["sector"] or "", DEFAULT_SEGMENTS),
                phase=int(rng.integers(0, CALLS_PER_YEAR_SESSIONS)),
                heading_style=HEADING_STYLES[int(rng.integers(len(HEADING_STYLES)))],
            )
        )
    return out


def _driver_lookup(drivers: pl.DataFrame, column: str) -> dict[tuple[str, date], float]:
    frame = drivers.select(pl.col("trade_date").cast(pl.Date), "ticker", column).drop_nulls(column)
    return {(t, d): float(v) for d, t, v in frame.iter_rows()}


def _event_dates(company: _Company, sessions: list[date], every: int) -> list[tuple[int, date]]:
    return [(i, sessions[i]) for i in range(company.phase, len(sessions), every)]


# --- transcripts -----------------------------------------------------------------------------------------


def _tone_mix(tone: float) -> tuple[float, float, float]:
    """Probabilities of a negative / neutral / positive management sentence given the latent tone."""
    p_neutral = 0.30
    p_pos = (1.0 - p_neutral) * _logistic(1.6 * tone)
    return (1.0 - p_neutral - p_pos, p_neutral, p_pos)


def _management_sentences(
    rng: np.random.Generator, n: int, tone: float, company: _Company, when: date, counts: np.ndarray
) -> list[str]:
    pools = (NEGATIVE_PHRASES, NEUTRAL_PHRASES, POSITIVE_PHRASES)
    kinds = rng.choice(3, size=n, p=_tone_mix(tone))
    out = []
    for k in kinds:
        counts[k] += 1
        pool = pools[k]
        out.append(render_phrase(pool[rng.integers(len(pool))], rng, company.segments, when))
    return out


def _paragraphs(sentences: list[str], rng: np.random.Generator) -> list[str]:
    paras, i = [], 0
    while i < len(sentences):
        k = int(rng.integers(2, 5))
        paras.append(" ".join(sentences[i : i + k]))
        i += k
    return paras


def render_transcript(
    company: _Company, when: date, tone: float, rng: np.random.Generator
) -> tuple[str, np.ndarray]:
    """One call's text and the counts of (negative, neutral, positive) management sentences drawn."""
    counts = np.zeros(3, dtype=np.int64)
    quarter = _quarter_label(when)
    call_time = ("8:00 AM ET", "8:30 AM ET", "10:00 AM ET", "4:30 PM ET", "5:00 PM ET")[rng.integers(5)]
    ceo, cfo = f"{company.ceo} -- Chief Executive Officer", f"{company.cfo} -- Chief Financial Officer"
    lines = [
        f"{company.name} ({company.ticker}) {quarter} Earnings Call Transcript",
        f"Company: {company.name}",
        f"Ticker: {company.ticker}",
        f"Date: {when.isoformat()}",
        f"Call time: {call_time}",
        "",
        "Prepared Remarks",
        "",
        "Operator",
        OPERATOR_OPENING.format(company=company.name, quarter=quarter),
        "",
        f"{company.ir} -- Head of Investor Relations",
        IR_OPENING,
        "",
    ]
    for speaker, n in ((ceo, int(rng.integers(14, 24))), (cfo, int(rng.integers(10, 18)))):
        lines.append(speaker)
        lines.extend(_paragraphs(_management_sentences(rng, n, tone, company, when, counts), rng))
        lines.append("")
    lines += ["Question-and-Answer Session", ""]
    n_questions = int(rng.integers(3, 6))
    analysts = rng.choice(len(FIRST_NAMES), size=n_questions, replace=False)
    for q in range(n_questions):
        analyst = f"{FIRST_NAMES[analysts[q]]} {LAST_NAMES[(analysts[q] * 7 + q) % len(LAST_NAMES)]}"
        firm = BROKER_FIRMS[int(rng.integers(len(BROKER_FIRMS)))]
        lines += [
            "Operator",
            (OPERATOR_QA if q == 0 else OPERATOR_NEXT).format(analyst=analyst, firm=firm),
            "",
        ]
        question = render_phrase(
            ANALYST_QUESTIONS[rng.integers(len(ANALYST_QUESTIONS))], rng, company.segments, when
        )
        lines += [f"{analyst} -- Analyst, {firm}", f"Thanks for taking my question. {question}", ""]
        # answers are less scripted than prepared remarks: same latent tone, a little noise
        answer_tone = tone + float(rng.normal(0.0, 0.3))
        answerer = ceo if rng.random() < 0.6 else cfo
        sentences = _management_sentences(rng, int(rng.integers(3, 7)), answer_tone, company, when, counts)
        lines += [answerer, *_paragraphs(sentences, rng), ""]
    lines += ["Operator", OPERATOR_CLOSE, ""]
    return "\n".join(lines), counts


def call_published_at(text: str, when: date) -> datetime:
    """When a rendered transcript becomes usable: its header's Eastern call time + ``CALL_LENGTH`` + the vendor lag."""
    m = _CALL_TIME.search(text)
    if m is None:
        return pit.published_at("transcripts", pit.event_time_of("transcripts", when))
    hour = int(m.group(1)) % 12 + (12 if m.group(3) == "PM" else 0)
    start = datetime(when.year, when.month, when.day, hour, int(m.group(2)), tzinfo=_EASTERN)
    return pit.published_at("transcripts", (start + CALL_LENGTH).astimezone(timezone.utc))


def generate_transcripts(
    landing: str | Path,
    truth: str | Path,
    universe: pl.DataFrame,
    drivers: pl.DataFrame,
    sessions: list[date],
    seed: int,
) -> pl.DataFrame:
    """Write quarterly earnings-call transcripts for every live ticker and the true tone of each call.

    ``universe`` needs ticker, name, sector; ``drivers`` needs trade_date, ticker, management_tone. A call is
    written only on a session where the ticker has a driver row (it is live). Returns the truth frame
    (ticker, call_date, management_tone, n_negative, n_neutral, n_positive, file, published_at), also written to
    ``truth/transcript_tone.parquet``.
    """
    out_dir = Path(landing) / "transcripts"
    out_dir.mkdir(parents=True, exist_ok=True)
    tone_of = _driver_lookup(drivers, "management_tone")
    rows = []
    for company in _companies(universe, seed, salt=101):
        rng = _ticker_rng(seed, company.ticker, 102)
        for _, when in _event_dates(company, sessions, CALLS_PER_YEAR_SESSIONS):
            tone = tone_of.get((company.ticker, when))
            if tone is None:
                continue
            text, counts = render_transcript(company, when, tone, rng)
            name = f"{company.ticker}_{when.isoformat()}.txt"
            (out_dir / name).write_text(text, encoding="utf-8")
            rows.append((company.ticker, when, tone, *map(int, counts), name, call_published_at(text, when)))
    frame = pl.DataFrame(
        rows,
        schema={
            "ticker": pl.String,
            "call_date": pl.Date,
            "management_tone": pl.Float64,
            "n_negative": pl.Int64,
            "n_neutral": pl.Int64,
            "n_positive": pl.Int64,
            "file": pl.String,
            "published_at": pit.TS,
        },
        orient="row",
    )
    truth_dir = Path(truth)
    truth_dir.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(truth_dir / "transcript_tone.parquet")
    return frame


# --- filings ---------------------------------------------------------------------------------------------


def _heading(style: str, num: str, title: str) -> str:
    return style.format(num=num, title=title, TITLE=title.upper())


def render_filing(
    company: _Company, when: date, form: str, risk: float, rng: np.random.Generator
) -> tuple[str, int, float]:
    """One filing's text, its number of risk-factor paragraphs and the negative share of its MD&A."""
    h = company.heading_style
    # higher latent risk: more risk factors, more of them severe, a more negative MD&A
    n_risk = max(3, int(round((10 if form == "10-K" else 5) * math.exp(0.35 * risk) + rng.normal(0, 1))))
    p_severe = _logistic(1.5 * risk - 0.5)
    risk_paras = []
    for _ in range(n_risk):
        pool = RISK_FACTOR_SEVERE if rng.random() < p_severe else RISK_FACTOR_BENIGN
        lead = render_phrase(pool[rng.integers(len(pool))], rng, company.segments, when)
        extra = render_phrase(
            RISK_FACTOR_BENIGN[rng.integers(len(RISK_FACTOR_BENIGN))], rng, company.segments, when
        )
        risk_paras.append(f"{lead} {extra}")
    p_neg = _logistic(1.4 * risk - 0.3) * 0.8
    p_pos = (1.0 - p_neg) * 0.45
    n_mdna = max(6, int(round((16 if form == "10-K" else 9) * math.exp(0.15 * risk) + rng.normal(0, 1))))
    kinds = rng.choice(3, size=n_mdna, p=(p_neg, 1.0 - p_neg - p_pos, p_pos))
    pools = (MDNA_NEGATIVE, MDNA_NEUTRAL, MDNA_POSITIVE)
    mdna = [render_phrase(pools[k][rng.integers(len(pools[k]))], rng, company.segments, when) for k in kinds]
    period = "fiscal year" if form == "10-K" else "quarterly period"
    mdna_title = "Management's Discussion and Analysis of Financial Condition and Results of Operations"
    lines = [
        "UNITED STATES SECURITIES AND EXCHANGE COMMISSION",
        "Washington, D.C. 20549",
        f"FORM {form}",
        f"{'ANNUAL' if form == '10-K' else 'QUARTERLY'} REPORT for the {period} ended {when.isoformat()}",
        f"Registrant: {company.name}",
        f"Ticker: {company.ticker}",
        f"Filed: {when.isoformat()}",
        "",
    ]
    if form == "10-K":
        lines += [
            "PART I",
            _heading(h, "1", "Business"),
            f"{company.name} operates in the {company.sector or 'diversified'} sector through "
            + ", ".join(company.segments)
            + ".",
            "",
            _heading(h, "1A", "Risk Factors"),
            *risk_paras,
            "",
            _heading(h, "1B", "Unresolved Staff Comments"),
            "None.",
            "",
            "PART II",
            _heading(h, "7", mdna_title),
            *_paragraphs(mdna, rng),
            "",
            _heading(h, "7A", "Quantitative and Qualitative Disclosures About Market Risk"),
            "We are exposed to interest rate and currency risk in the normal course of business.",
            "",
            _heading(h, "8", "Financial Statements and Supplementary Data"),
            "The consolidated financial statements are included elsewhere in this report.",
        ]
    else:
        lines += [
            "PART I - FINANCIAL INFORMATION",
            _heading(h, "1", "Financial Statements"),
            "The condensed consolidated financial statements are unaudited.",
            "",
            _heading(h, "2", mdna_title),
            *_paragraphs(mdna, rng),
            "",
            _heading(h, "3", "Quantitative and Qualitative Disclosures About Market Risk"),
            "There were no material changes to our market risk exposures.",
            "",
            "PART II - OTHER INFORMATION",
            _heading(h, "1A", "Risk Factors"),
            *risk_paras,
            "",
            _heading(h, "6", "Exhibits"),
            "The exhibits are listed in the exhibit index.",
        ]
    return "\n".join(lines) + "\n", n_risk, float(np.mean(kinds == 0))


def generate_filings(
    landing: str | Path,
    truth: str | Path,
    universe: pl.DataFrame,
    drivers: pl.DataFrame,
    sessions: list[date],
    seed: int,
) -> pl.DataFrame:
    """Write 10-K / 10-Q-like filings for every live ticker and the true risk behind each.

    One filing per ticker per quarter (every fourth one a 10-K), on a per-ticker phase. ``drivers`` needs
    trade_date, ticker, filing_risk. Returns the truth frame (ticker, filing_date, form, filing_risk,
    n_risk_factors, mdna_negative_share, file, published_at), also written to ``truth/filing_risk.parquet``.
    """
    out_dir = Path(landing) / "filings"
    out_dir.mkdir(parents=True, exist_ok=True)
    risk_of = _driver_lookup(drivers, "filing_risk")
    rows = []
    for company in _companies(universe, seed, salt=201):
        rng = _ticker_rng(seed, company.ticker, 202)
        annual_slot = int(rng.integers(4))
        for k, (_, when) in enumerate(_event_dates(company, sessions, CALLS_PER_YEAR_SESSIONS)):
            risk = risk_of.get((company.ticker, when))
            if risk is None:
                continue
            form = "10-K" if k % 4 == annual_slot else "10-Q"
            text, n_risk, neg_share = render_filing(company, when, form, risk, rng)
            name = f"{company.ticker}_{form}_{when.isoformat()}.txt"
            (out_dir / name).write_text(text, encoding="utf-8")
            published = pit.published_at("filings", pit.event_time_of("filings", when))
            rows.append((company.ticker, when, form, risk, n_risk, neg_share, name, published))
    frame = pl.DataFrame(
        rows,
        schema={
            "ticker": pl.String,
            "filing_date": pl.Date,
            "form": pl.String,
            "filing_risk": pl.Float64,
            "n_risk_factors": pl.Int64,
            "mdna_negative_share": pl.Float64,
            "file": pl.String,
            "published_at": pit.TS,
        },
        orient="row",
    )
    truth_dir = Path(truth)
    truth_dir.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(truth_dir / "filing_risk.parquet")
    return frame
