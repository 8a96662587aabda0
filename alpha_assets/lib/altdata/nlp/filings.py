"""Regulatory filings (10-K / 10-Q): find the risk-factor and MD&A sections and turn them into features.

``parse_filing`` locates "Item" headings whatever their styling (``Item 1A. Risk Factors``, ``ITEM 1A —
RISK FACTORS``, ``Item 1A:`` with the title on the next line, non-breaking spaces, curly apostrophes) and keeps,
for each section, the longest body found, so a table of contents that repeats the headings does not win. MD&A
is found by its title, so both the 10-K's Item 7 and the 10-Q's Item 2 are recognised.

``filing_features`` gives per-section word and sentence counts, Gunning fog readability, sentiment (with a
``SentimentModel``: mean polarity and negative share), a model-free negative-term share, and the change versus
the company's previous filing (log change in section length, TF-IDF cosine similarity). Bad inputs raise
``FilingError`` naming the file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from alpha_assets.lib.altdata.nlp.text import (
    DocumentError,
    gunning_fog,
    normalise,
    read_document,
    split_sentences,
    tfidf_cosine,
    words,
)

if TYPE_CHECKING:
    import polars as pl

    from alpha_assets.lib.altdata.nlp.sentiment import SentimentModel

__all__ = [
    "SECTIONS",
    "FilingError",
    "ParsedFiling",
    "filing_features",
    "filing_features_frame",
    "filing_features_from_file",
    "filing_row_schema",
    "parse_filing",
    "read_filing",
]

SECTIONS = ("risk_factors", "mdna")


class FilingError(DocumentError):
    """A filing that cannot be used (empty, binary, no recognisable section); the message names the file."""


@dataclass
class ParsedFiling:
    form: str | None
    ticker: str | None
    filed: date | None
    sections: dict[str, str] = field(default_factory=dict)
    headings: list[tuple[str, str]] = field(default_factory=list)  # (item number, title) in document order


_HEADING = re.compile(
    r"^[ \t]*(?:PART\s+[IV]+\s*[,.\-–—:]?\s*)?ITEM[ \t]*(?P<num>\d{1,2}[A-C]?)\b[ \t]*[.:\-–—)]?[ \t]*(?P<title>[^\n]*)$",
    re.I | re.M,
)
_FORM = re.compile(r"\bFORM\s+(10-K|10-Q)\b", re.I)
_FILE_NAME = re.compile(r"^(?P<ticker>[A-Z0-9.\-]+)_(?P<form>10-[KQ])_(?P<date>\d{4}-\d{2}-\d{2})")
_TICKER = re.compile(r"^\s*(?:ticker|trading symbol)\s*:\s*([A-Z][A-Z0-9.\-]{0,9})\s*$", re.I | re.M)
_FILED = re.compile(r"^\s*filed\s*:\s*(\d{4}-\d{2}-\d{2})\s*$", re.I | re.M)


def _section_of(num: str, title: str) -> str | None:
    t = title.lower()
    num = num.lower()
    if num == "1a" and ("risk" in t or not t):
        return "risk_factors"
    if ("management" in t and "discussion" in t) or "md&a" in t:
        return "mdna"
    return None


def parse_filing(text: str, source: str | Path | None = None) -> ParsedFiling:
    """Find Item headings and cut out Item 1A Risk Factors and the MD&A (10-K Item 7, 10-Q Item 2).

    Raises ``FilingError`` (naming ``source``) for empty text or when neither section is found.
    """
    text = normalise(text)
    if not text.strip():
        raise FilingError(source, "empty filing")
    form_match = _FORM.search(text)
    ticker_match = _TICKER.search(text)
    filed_match = _FILED.search(text)
    parsed = ParsedFiling(
        form=form_match.group(1).upper() if form_match else None,
        ticker=ticker_match.group(1) if ticker_match else None,
        filed=date.fromisoformat(filed_match.group(1)) if filed_match else None,
    )
    if source is not None and (fm := _FILE_NAME.match(Path(source).name)):
        parsed.form = parsed.form or fm.group("form")
        parsed.ticker = parsed.ticker or fm.group("ticker")
        parsed.filed = parsed.filed or date.fromisoformat(fm.group("date"))

    matches = list(_HEADING.finditer(text))
    for i, m in enumerate(matches):
        title = m.group("title").strip()
        body_start = m.end()
        if not title:
            # heading number alone on its line: the title is the next non-empty line
            nxt = re.match(r"\s*\n[ \t]*([^\n]{1,150})\n", text[m.end() :])
            if nxt:
                title = nxt.group(1).strip()
                body_start = m.end() + nxt.end()
        title = title.rstrip(" .")
        parsed.headings.append((m.group("num").upper(), title))
        section = _section_of(m.group("num"), title)
        if section is None:
            continue
        body_end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = text[body_start:body_end].strip()
        if len(body) > len(parsed.sections.get(section, "")):
            parsed.sections[section] = body  # longest wins: a table-of-contents entry has an empty body
    if not parsed.sections:
        raise FilingError(source, "no Item 1A Risk Factors or MD&A section found")
    return parsed


def read_filing(path: str | Path) -> tuple[str, ParsedFiling]:
    """Read and parse a filing file; ``FilingError`` names the file if it is empty, binary or unparseable."""
    text = read_document(path, FilingError)
    return text, parse_filing(text, source=path)


# Model-free signal: a short list of our own of words that mark adverse or uncertain disclosures.
NEGATIVE_TERMS = frozenset(
    [
        "adverse",
        "adversely",
        "breach",
        "decline",
        "declined",
        "declines",
        "decrease",
        "decreased",
        "default",
        "defaults",
        "deficiency",
        "delay",
        "delayed",
        "difficult",
        "disruption",
        "disruptions",
        "doubt",
        "downgrade",
        "downgraded",
        "failure",
        "fines",
        "impairment",
        "impairments",
        "investigation",
        "lawsuit",
        "litigation",
        "loss",
        "losses",
        "weakness",
        "negative",
        "penalties",
        "recall",
        "recalls",
        "restructuring",
        "shortfall",
        "shortfalls",
        "terminate",
        "terminated",
        "unable",
        "uncertain",
        "uncertainty",
        "unfavorable",
        "unauthorized",
        "volatile",
        "volatility",
        "weak",
        "weakness",
        "write-down",
        "write-downs",
        "writedown",
    ]
)


def _section_features(name: str, text: str, model: SentimentModel | None) -> dict[str, Any]:
    sentences = split_sentences(text)
    ws = [w.lower() for w in words(text)]
    out: dict[str, Any] = {
        f"{name}_words": len(ws),
        f"{name}_sentences": len(sentences),
        f"{name}_fog": gunning_fog(text) if ws else float("nan"),
        f"{name}_negative_terms": (sum(w in NEGATIVE_TERMS for w in ws) / len(ws)) if ws else float("nan"),
        f"{name}_sentiment": float("nan"),
        f"{name}_negative_share": float("nan"),
    }
    if model is not None and sentences:
        probs = model.score_sentences(sentences)
        out[f"{name}_sentiment"] = float(np.mean(probs[:, 2] - probs[:, 0]))
        out[f"{name}_negative_share"] = float(np.mean(probs.argmax(axis=1) == 0))
    return out


def _log_change(now: int, before: int) -> float:
    return math.log((now + 1) / (before + 1))


def filing_features(
    text: str,
    previous_text: str | None = None,
    model: SentimentModel | None = None,
    *,
    source: str | Path | None = None,
    previous_source: str | Path | None = None,
) -> dict[str, Any]:
    """Features of one filing, optionally against the company's previous filing.

    Keys: form, ticker, filed, total_words; for each of risk_factors / mdna: ``_words``, ``_sentences``,
    ``_fog``, ``_negative_terms`` (share of words in ``NEGATIVE_TERMS``), ``_sentiment`` and
    ``_negative_share`` (NaN without a model), ``_words_change`` (log((now+1)/(before+1))) and ``_similarity``
    (TF-IDF cosine with the previous filing's section); plus document_similarity. Change keys are NaN without a
    previous filing. A section the filing lacks gives 0 words and NaN elsewhere.
    """
    parsed = parse_filing(text, source)
    features: dict[str, Any] = {
        "file": str(source) if source is not None else None,
        "form": parsed.form,
        "ticker": parsed.ticker,
        "filed": parsed.filed,
        "total_words": len(words(text)),
    }
    for name in SECTIONS:
        features.update(_section_features(name, parsed.sections.get(name, ""), model))
    previous = parse_filing(previous_text, previous_source) if previous_text is not None else None
    for name in SECTIONS:
        if previous is None:
            features[f"{name}_words_change"] = float("nan")
            features[f"{name}_similarity"] = float("nan")
            continue
        now, before = parsed.sections.get(name, ""), previous.sections.get(name, "")
        features[f"{name}_words_change"] = _log_change(len(words(now)), len(words(before)))
        features[f"{name}_similarity"] = tfidf_cosine(now, before)
    features["document_similarity"] = (
        tfidf_cosine(text, previous_text) if previous_text is not None else float("nan")
    )
    return features


def filing_features_from_file(
    path: str | Path, previous_path: str | Path | None = None, model: SentimentModel | None = None
) -> dict[str, Any]:
    """``filing_features`` on files; a bad file raises ``FilingError`` naming it."""
    text, _ = read_filing(path)
    previous = read_filing(previous_path)[0] if previous_path is not None else None
    return filing_features(text, previous, model, source=path, previous_source=previous_path)


def filing_features_frame(
    paths: Iterable[str | Path],
    model: SentimentModel | None = None,
    previous_by_ticker: Mapping[str, str | Path] | None = None,
) -> tuple[pl.DataFrame, list[FilingError]]:
    """Features of many filings, each compared with the company's previous one.

    Filings are taken in (ticker, filed) order; the previous filing of a ticker is the one before it in
    ``paths`` or, for its first filing here, ``previous_by_ticker[ticker]`` (e.g. the last file of an earlier
    partition). Returns (one row per good filing, the errors of bad files); a bad previous filing only loses the
    change features.
    """
    import polars as pl

    parsed: list[tuple[Path, str, ParsedFiling]] = []
    errors: list[FilingError] = []
    for path in paths:
        try:
            text, filing = read_filing(path)
            parsed.append((Path(path), text, filing))
        except FilingError as exc:
            errors.append(exc)
    parsed.sort(key=lambda item: (item[2].ticker or "", item[2].filed or date.min, item[0].name))
    last: dict[str, tuple[Path, str]] = {}
    for ticker, prev_path in (previous_by_ticker or {}).items():
        try:
            last[ticker] = (Path(prev_path), read_filing(prev_path)[0])
        except FilingError:
            continue
    if model is not None and parsed:
        model = _prescored(model, [filing for _, _, filing in parsed])
    rows = []
    for path, text, filing in parsed:
        before = last.get(filing.ticker or "")
        rows.append(
            filing_features(
                text,
                before[1] if before else None,
                model,
                source=path,
                previous_source=before[0] if before else None,
            )
        )
        if filing.ticker:
            last[filing.ticker] = (path, text)
    frame = pl.DataFrame(rows, schema=filing_row_schema())
    return frame, errors


class _Prescored:
    """A model whose sentences were all scored in one batched pass (a sentence repeated across filings, such as
    boilerplate, is scored once); sentences it has not seen go to the model."""

    def __init__(self, model: SentimentModel, sentences: list[str]):
        unique = list(dict.fromkeys(sentences))
        probs = model.score_sentences(unique) if unique else np.zeros((0, 3))
        self._cache = dict(zip(unique, probs, strict=True))
        self._model = model
        self.name = model.name

    def score_sentences(self, sentences: list[str]) -> np.ndarray:
        missing = [x for x in dict.fromkeys(sentences) if x not in self._cache]
        if missing:
            self._cache.update(zip(missing, self._model.score_sentences(missing), strict=True))
        return np.array([self._cache[x] for x in sentences]).reshape(len(sentences), 3)


def _prescored(model: SentimentModel, filings: list[ParsedFiling]) -> Any:
    sentences = [x for f in filings for name in SECTIONS for x in split_sentences(f.sections.get(name, ""))]
    return _Prescored(model, sentences)


def filing_row_schema() -> dict[str, Any]:
    """Polars schema of the rows ``filing_features_frame`` returns."""
    import polars as pl

    schema: dict[str, Any] = {
        "file": pl.String,
        "form": pl.String,
        "ticker": pl.String,
        "filed": pl.Date,
        "total_words": pl.Int64,
    }
    for name in SECTIONS:
        schema |= {f"{name}_words": pl.Int64, f"{name}_sentences": pl.Int64}
        for suffix in ("fog", "negative_terms", "sentiment", "negative_share"):
            schema[f"{name}_{suffix}"] = pl.Float64
    for name in SECTIONS:
        schema |= {f"{name}_words_change": pl.Float64, f"{name}_similarity": pl.Float64}
    schema["document_similarity"] = pl.Float64
    return schema
