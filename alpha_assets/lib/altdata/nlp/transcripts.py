"""Earnings-call transcripts: parse speakers and sections, score sentiment per sentence, section and role.

``parse_transcript`` understands the usual vendor layouts: a header (company, ticker, date, call time), a
prepared-remarks section and a question-and-answer section (several spellings), and speaker turns written either
on their own line (``Jane Doe -- Chief Executive Officer``, ``Operator``) or inline (``Jane Doe: Thank you``).
A speaker named once with a title keeps that role in later, name-only turns.

``score_transcript`` returns sentence-level sentiment plus aggregates: the call (all non-operator sentences),
prepared remarks vs Q&A, and per role (CEO, CFO, Analyst, Executive). Files that are empty, binary or have no
speaker turns raise ``TranscriptError`` naming the file, so the caller can quarantine them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from alpha_assets.lib.altdata.nlp.text import DocumentError, normalise, read_document, split_sentences

if TYPE_CHECKING:
    import polars as pl

    from alpha_assets.lib.altdata.nlp.sentiment import SentimentModel

__all__ = [
    "ROLES",
    "ParsedTranscript",
    "TranscriptError",
    "TranscriptSentence",
    "Turn",
    "parse_transcript",
    "read_transcript",
    "score_transcript",
    "score_transcript_text",
    "score_transcripts",
    "speaker_role",
    "transcript_row",
    "transcript_row_schema",
]

ROLES = ("CEO", "CFO", "Executive", "Analyst", "Operator", "Unknown")
PREPARED, QA = "prepared", "qa"


class TranscriptError(DocumentError):
    """A transcript that cannot be used (empty, binary, no speaker turns); the message names the file."""


@dataclass(frozen=True)
class Turn:
    speaker: str
    title: str
    role: str
    section: str
    text: str


@dataclass(frozen=True)
class TranscriptSentence:
    section: str
    speaker: str
    role: str
    text: str


@dataclass
class ParsedTranscript:
    company: str | None
    ticker: str | None
    call_date: date | None
    call_time: str | None
    turns: list[Turn] = field(default_factory=list)

    @property
    def sections(self) -> dict[str, list[Turn]]:
        out: dict[str, list[Turn]] = {PREPARED: [], QA: []}
        for t in self.turns:
            out.setdefault(t.section, []).append(t)
        return out

    @property
    def speakers(self) -> dict[str, str]:
        """Speaker name -> role, in order of first appearance."""
        out: dict[str, str] = {}
        for t in self.turns:
            out.setdefault(t.speaker, t.role)
        return out

    @property
    def sentences(self) -> list[TranscriptSentence]:
        return [
            TranscriptSentence(t.section, t.speaker, t.role, s)
            for t in self.turns
            for s in split_sentences(t.text)
        ]


# --- parsing ---------------------------------------------------------------------------------------------

_SECTION_PATTERNS = (
    (
        PREPARED,
        re.compile(
            r"^\s*(prepared\s+remarks|presentation|management\s+remarks|opening\s+remarks)\s*:?\s*$", re.I
        ),
    ),
    (
        QA,
        re.compile(
            r"^\s*(questions?[\s-]+(and|&)[\s-]+answers?(\s+session)?|q\s*&\s*a(\s+session)?|question-and-answer(\s+session)?)\s*:?\s*$",
            re.I,
        ),
    ),
)
_NAME = r"(?:[A-Z][\w.'\-]*)(?:\s+(?:[A-Z][\w.'\-]*|de|van|von|da|del|la|le)){1,4}"
_SEP = r"\s*(?:--|—|–|-|,)\s*"
_OWN_LINE = re.compile(rf"^(?P<name>Operator|{_NAME})(?:{_SEP}(?P<title>[A-Za-z&][^\n]{{1,120}}))?\s*:?\s*$")
_INLINE = re.compile(
    rf"^(?P<name>Operator|{_NAME})(?:{_SEP}(?P<title>[A-Za-z&][^:\n]{{1,100}}))?\s*:\s+(?P<text>\S.*)$"
)
_TITLE_ABBREV_END = re.compile(r"\b(Co|Inc|Corp|Ltd|LLC|plc|LP|L\.P|Jr|Sr|S\.A|N\.A|AG|SE|SA)\.$")
_HEADER_FIELD = re.compile(
    r"^\s*(company|ticker|symbol|date|call\s+date|call\s+time|time)\s*:\s*(.+?)\s*$", re.I
)
_TITLE_LINE = re.compile(r"^(?P<company>.+?)\s+\((?:[A-Z]+:\s*)?(?P<ticker>[A-Z][A-Z0-9.\-]{0,9})\)")
_PARTICIPANTS = re.compile(
    r"^(executives|analysts|company participants|corporate participants|conference call participants|call participants)\s*:?$",
    re.I,
)
_OPERATOR = re.compile(r"^\s*operator\s*(:|$)", re.I)
_FILE_NAME = re.compile(r"^(?P<ticker>[A-Z0-9.\-]+)_(?P<date>\d{4}-\d{2}-\d{2})")


def speaker_role(name: str, title: str = "") -> str:
    """CEO, CFO, Executive, Analyst, Operator or Unknown from a speaker's name and title."""
    if name.strip().lower() == "operator":
        return "Operator"
    t = title.lower()
    if "chief executive" in t or re.search(r"\bceo\b", t):
        return "CEO"
    if "chief financial" in t or re.search(r"\bcfo\b", t):
        return "CFO"
    if "analyst" in t or "research" in t or "securities" in t:
        return "Analyst"
    if t.strip():
        return "Executive"
    return "Unknown"


def _plausible_title(title: str | None) -> bool:
    if not title:
        return True
    title = title.strip()
    if len(title.split()) > 14 or title.endswith(("?", "!")):
        return False
    return not title.endswith(".") or bool(_TITLE_ABBREV_END.search(title))


def _parse_date(value: str) -> date | None:
    value = value.strip()
    for fmt in ("%Y-%m-%d", "%B %d, %Y", "%b %d, %Y", "%d %B %Y", "%m/%d/%Y"):
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    m = re.search(r"\d{4}-\d{2}-\d{2}", value)
    return date.fromisoformat(m.group(0)) if m else None


def parse_transcript(text: str, source: str | Path | None = None) -> ParsedTranscript:
    """Split a transcript into header fields and speaker turns tagged with section and role.

    Raises ``TranscriptError`` (naming ``source``) when the text is empty or has no speaker turns.
    """
    text = normalise(text)
    if not text.strip():
        raise TranscriptError(source, "empty transcript")
    lines = text.split("\n")
    first_section = next(
        (i for i, line in enumerate(lines) if any(p.match(line) for _, p in _SECTION_PATTERNS)), None
    )
    operator_first = next((i for i, line in enumerate(lines) if _OPERATOR.match(line)), None)
    # without a section heading the header runs to the operator's first words; without either, turns may start
    # anywhere, so the header fields are read from the top lines and turns from everywhere
    header_end = first_section if first_section is not None else operator_first
    body_start = header_end if header_end is not None else 0
    if header_end is None:
        header_end = min(len(lines), 8)
    fields: dict[str, str] = {}
    company = ticker = None
    # participant lists before the first section ("Executives" / "Analysts") name people whose later turns
    # carry only their name
    roster: dict[str, tuple[str, str]] = {}
    listing: str | None = None
    for line in lines[:header_end]:
        stripped = line.strip()
        m = _HEADER_FIELD.match(line)
        if m:
            fields[re.sub(r"\s+", " ", m.group(1).lower())] = m.group(2)
        elif company is None and (mt := _TITLE_LINE.match(stripped)):
            company, ticker = mt.group("company"), mt.group("ticker")
        elif _PARTICIPANTS.match(stripped):
            listing = "analyst" if re.search(r"analyst|conference call", stripped, re.I) else "company"
        elif listing and (person := _OWN_LINE.match(stripped)) and person.group("title"):
            title = person.group("title").strip()
            if listing == "analyst" and "analyst" not in title.lower():
                title = f"Analyst, {title}"
            roster[person.group("name")] = (title, speaker_role(person.group("name"), title))
    company = fields.get("company", company)
    ticker = fields.get("ticker", fields.get("symbol", ticker))
    raw_date = fields.get("date") or fields.get("call date")
    call_date = _parse_date(raw_date) if raw_date else None
    call_time = fields.get("call time") or fields.get("time")
    if source is not None:
        fm = _FILE_NAME.match(Path(source).name)
        if fm:
            ticker = ticker or fm.group("ticker")
            call_date = call_date or date.fromisoformat(fm.group("date"))

    parsed = ParsedTranscript(company, ticker, call_date, call_time)
    section = PREPARED
    speaker: tuple[str, str] | None = None
    buffer: list[str] = []

    def flush() -> None:
        if speaker is not None and buffer:
            body = " ".join(" ".join(buffer).split())
            if body:
                name, title = speaker
                parsed.turns.append(Turn(name, title, speaker_role(name, title), section, body))
        buffer.clear()

    def resolve(name: str, title: str | None) -> tuple[str, str]:
        name = name.strip()
        if title:
            roster[name] = (title.strip(), speaker_role(name, title))
        return name, roster.get(name, (title or "", ""))[0]

    in_listing = False
    for line in lines[body_start:]:
        stripped = line.strip()
        if not stripped:
            in_listing = False
            continue
        if _PARTICIPANTS.match(stripped) or in_listing:
            in_listing = True  # a participant list (read above), not a turn
            continue
        matched_section = next((s for s, p in _SECTION_PATTERNS if p.match(stripped)), None)
        if matched_section is not None:
            flush()
            section, speaker = matched_section, None
            continue
        if body_start == 0 and _HEADER_FIELD.match(stripped):
            continue
        own = _OWN_LINE.match(stripped)
        if own and len(stripped) <= 160 and _plausible_title(own.group("title")):
            name = own.group("name")
            if own.group("title") or name == "Operator" or name in roster or stripped.endswith(":"):
                flush()
                speaker = resolve(name, own.group("title"))
                continue
        inline = _INLINE.match(stripped)
        if inline and _plausible_title(inline.group("title")):
            flush()
            speaker = resolve(inline.group("name"), inline.group("title"))
            buffer.append(inline.group("text"))
            continue
        if speaker is not None:
            buffer.append(stripped)
    flush()
    if not parsed.turns:
        raise TranscriptError(source, "no speaker turns found: not a transcript layout we can parse")
    return parsed


def read_transcript(path: str | Path) -> ParsedTranscript:
    """Read and parse a transcript file; ``TranscriptError`` names the file if it is empty, binary or unparseable."""
    return parse_transcript(read_document(path, TranscriptError), source=path)


# --- scoring ---------------------------------------------------------------------------------------------


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")


def _aggregate(
    parsed: ParsedTranscript, probs: np.ndarray, source: str | None, model_name: str
) -> dict[str, Any]:
    sentences = parsed.sentences
    score = probs[:, 2] - probs[:, 0] if len(probs) else np.zeros(0)
    roles = np.array([s.role for s in sentences], dtype=object)
    sections = np.array([s.section for s in sentences], dtype=object)
    spoken = roles != "Operator"  # operator lines are boilerplate and carry no view of the business
    management = np.isin(roles, ["CEO", "CFO", "Executive"])
    role_sentiment = {r: _mean(score[roles == r]) for r in ROLES if r != "Operator" and np.any(roles == r)}
    return {
        "file": source,
        "ticker": parsed.ticker,
        "call_date": parsed.call_date,
        "company": parsed.company,
        "model": model_name,
        "n_sentences": int(spoken.sum()),
        "call_sentiment": _mean(score[spoken]),
        "management_sentiment": _mean(score[management]),
        "prepared_sentiment": _mean(score[spoken & (sections == PREPARED)]),
        "qa_sentiment": _mean(score[spoken & (sections == QA)]),
        "positive_share": _mean((probs[spoken].argmax(axis=1) == 2).astype(float))
        if spoken.any()
        else float("nan"),
        "negative_share": _mean((probs[spoken].argmax(axis=1) == 0).astype(float))
        if spoken.any()
        else float("nan"),
        "role_sentiment": role_sentiment,
        "section_sentiment": {
            PREPARED: _mean(score[spoken & (sections == PREPARED)]),
            QA: _mean(score[spoken & (sections == QA)]),
        },
        "sentences": [
            {
                "section": s.section,
                "speaker": s.speaker,
                "role": s.role,
                "text": s.text,
                "p_negative": float(p[0]),
                "p_neutral": float(p[1]),
                "p_positive": float(p[2]),
                "score": float(p[2] - p[0]),
            }
            for s, p in zip(sentences, probs, strict=True)
        ],
    }


def score_transcript_text(
    model: SentimentModel, text: str, source: str | Path | None = None
) -> dict[str, Any]:
    """``score_transcript`` for text already in memory."""
    parsed = parse_transcript(text, source)
    probs = model.score_sentences([s.text for s in parsed.sentences])
    return _aggregate(parsed, probs, str(source) if source is not None else None, model.name)


def score_transcript(model: SentimentModel, path: str | Path) -> dict[str, Any]:
    """Sentiment of one call: per sentence, per section (prepared / qa), per role, and for the whole call.

    Keys: file, ticker, call_date, company, model, n_sentences, call_sentiment, management_sentiment,
    prepared_sentiment, qa_sentiment, positive_share, negative_share, role_sentiment {role: score},
    section_sentiment {prepared, qa}, sentences [ {section, speaker, role, text, p_negative, p_neutral,
    p_positive, score} ]. Scores are p_positive - p_negative; a missing section or role gives NaN / no key.
    """
    parsed = read_transcript(path)
    probs = model.score_sentences([s.text for s in parsed.sentences])
    return _aggregate(parsed, probs, str(path), model.name)


def transcript_row(result: dict[str, Any]) -> dict[str, Any]:
    """The flat, table-ready part of a ``score_transcript`` result (one row per call)."""
    row = {k: v for k, v in result.items() if k not in ("sentences", "role_sentiment", "section_sentiment")}
    for role in ("CEO", "CFO", "Executive", "Analyst"):
        row[f"{role.lower()}_sentiment"] = result["role_sentiment"].get(role, float("nan"))
    return row


def transcript_row_schema() -> dict[str, Any]:
    """Polars schema of the rows ``score_transcripts`` returns (one row per call)."""
    import polars as pl

    floats = [
        "call_sentiment",
        "management_sentiment",
        "prepared_sentiment",
        "qa_sentiment",
        "positive_share",
        "negative_share",
        "ceo_sentiment",
        "cfo_sentiment",
        "executive_sentiment",
        "analyst_sentiment",
    ]
    return {
        "file": pl.String,
        "ticker": pl.String,
        "call_date": pl.Date,
        "company": pl.String,
        "model": pl.String,
        "n_sentences": pl.Int64,
        **dict.fromkeys(floats, pl.Float64),
    }


def score_transcripts(
    model: SentimentModel, paths: Iterable[str | Path]
) -> tuple[pl.DataFrame, list[TranscriptError]]:
    """Score many calls in one batched model pass. Returns (one row per good call, the errors of bad files)."""
    import polars as pl

    parsed: list[tuple[str, ParsedTranscript]] = []
    errors: list[TranscriptError] = []
    for path in paths:
        try:
            parsed.append((str(path), read_transcript(path)))
        except TranscriptError as exc:
            errors.append(exc)
    texts: list[str] = []
    bounds: list[tuple[int, int]] = []
    for _, p in parsed:
        sents = [s.text for s in p.sentences]
        bounds.append((len(texts), len(texts) + len(sents)))
        texts.extend(sents)
    probs = model.score_sentences(texts)
    rows = [
        transcript_row(_aggregate(p, probs[a:b], src, model.name))
        for (src, p), (a, b) in zip(parsed, bounds, strict=True)
    ]
    return pl.DataFrame(rows, schema=transcript_row_schema()), errors
