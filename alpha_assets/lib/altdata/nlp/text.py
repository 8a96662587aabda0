"""Plain-text building blocks shared by the transcript and filing readers.

Reading a vendor document safely (empty, binary or undecodable files raise an error that names the file),
sentence splitting that survives financial abbreviations, the Gunning fog readability index, and TF-IDF cosine
similarity between two documents. Pure Python and numpy: no model needed.

Readability: ``textstat`` is a dependency of the project, but its syllable counter looks words up in NLTK's
CMU dictionary and, when that corpus is missing (as on an offline machine), calls ``nltk.download``. Feature
values must not depend on whether a corpus happens to be on disk or on a network call, so the fog index here is
our own implementation of Gunning's definition, checked against hand-counted sentences in the tests.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path

__all__ = [
    "DocumentError",
    "count_syllables",
    "gunning_fog",
    "read_document",
    "split_sentences",
    "tfidf_cosine",
    "words",
]


class DocumentError(ValueError):
    """A vendor document that cannot be used; the message starts with the file it came from."""

    def __init__(self, source: str | Path | None, reason: str):
        self.source = str(source) if source is not None else "<text>"
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")


def read_document(path: str | Path, error: type[DocumentError] = DocumentError) -> str:
    """Read a UTF-8 (or Windows-1252) text document, refusing empty and binary files with ``error``."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise error(p, f"cannot be read ({exc.strerror or exc})") from exc
    if not raw.strip():
        raise error(p, "empty file")
    head = raw[:8192]
    control = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    if b"\x00" in head or control > 0.05 * len(head):
        raise error(p, "binary content, not text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("cp1252")
        except UnicodeDecodeError as exc:
            raise error(p, "not decodable as UTF-8 or Windows-1252 text") from exc
    return normalise(text)


def normalise(text: str) -> str:
    """Unify line endings, non-breaking spaces and typographic quotes/dashes found in vendor text."""
    return (
        text.replace("\r\n", "\n")
        .replace("\r", "\n")
        .replace("\xa0", " ")
        .replace("\u2019", "'")
        .replace("\u2018", "'")
        .replace("\u201c", '"')
        .replace("\u201d", '"')
    )


_ABBREVIATIONS = (
    "Mr.",
    "Mrs.",
    "Ms.",
    "Dr.",
    "Prof.",
    "Inc.",
    "Co.",
    "Corp.",
    "Ltd.",
    "Jr.",
    "Sr.",
    "St.",
    "No.",
    "vs.",
    "e.g.",
    "i.e.",
    "etc.",
    "approx.",
    "U.S.",
    "U.K.",
    "a.m.",
    "p.m.",
    "Jan.",
    "Feb.",
    "Mar.",
    "Apr.",
    "Jun.",
    "Jul.",
    "Aug.",
    "Sep.",
    "Sept.",
    "Oct.",
    "Nov.",
    "Dec.",
    "L.P.",
    "N.A.",
    "S.A.",
)
_ABBREV_RE = re.compile("|".join(re.escape(a) for a in sorted(_ABBREVIATIONS, key=len, reverse=True)))
_SPLIT_RE = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9$])")
_PLACEHOLDER = "\x00"


def _paragraphs(text: str) -> list[str]:
    """Join hard-wrapped lines; a blank line, a line ending a sentence or a short heading-like line ends a block."""
    blocks: list[str] = []
    current: list[str] = []
    for line in text.split("\n"):
        line = line.strip()
        if not line:
            if current:
                blocks.append(" ".join(current))
                current = []
            continue
        current.append(line)
        if line[-1] in ".!?:;\"'" or len(line) < 60:
            blocks.append(" ".join(current))
            current = []
    if current:
        blocks.append(" ".join(current))
    return [" ".join(b.split()) for b in blocks]


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences; abbreviations such as ``Inc.`` or ``U.S.`` do not end a sentence."""
    out: list[str] = []
    for block in _paragraphs(text):
        protected = _ABBREV_RE.sub(lambda m: m.group(0).replace(".", _PLACEHOLDER), block)
        for piece in _SPLIT_RE.split(protected):
            piece = piece.replace(_PLACEHOLDER, ".").strip()
            if piece:
                out.append(piece)
    return out


_WORD_RE = re.compile(r"[A-Za-z]+(?:['\-][A-Za-z]+)*")


def words(text: str) -> list[str]:
    """Alphabetic words (hyphenated and apostrophe forms kept whole); numbers are not words."""
    return _WORD_RE.findall(text)


def count_syllables(word: str) -> int:
    """Syllables of an English word by vowel groups, with the usual silent-e corrections."""
    w = word.lower().strip("'")
    if not w:
        return 0
    if len(w) <= 3:
        return 1
    count = len(re.findall(r"[aeiouy]+", w))
    if w.endswith("e") and not w.endswith(("le", "ee", "ye")):
        count -= 1  # silent final e: "rate", "improve"
    elif w.endswith("le") and len(w) > 2 and w[-3] in "aeiouy":
        count -= 1  # "sale", "whole": the e is silent after a vowel
    return max(count, 1)


def _complex_word(word: str, sentence_initial: bool) -> bool:
    """Gunning's "complex" word: three or more syllables, not counting -es/-ed/-ing endings, and not a proper
    noun or a hyphenated compound."""
    if "-" in word or (word[0].isupper() and not sentence_initial):
        return False
    stem = word.lower()
    for suffix in ("ing", "ed", "es"):
        if stem.endswith(suffix) and len(stem) - len(suffix) >= 3:
            stem = stem[: -len(suffix)]
            break
    return count_syllables(stem) >= 3


def gunning_fog(text: str) -> float:
    """Gunning fog index: 0.4 * (words per sentence + 100 * complex words / words). 0.0 for text without words."""
    n_words = n_complex = n_sentences = 0
    for sentence in split_sentences(text):
        ws = words(sentence)
        if not ws:
            continue
        n_sentences += 1
        n_words += len(ws)
        n_complex += sum(_complex_word(w, i == 0) for i, w in enumerate(ws))
    if n_words == 0:
        return 0.0
    return 0.4 * (n_words / n_sentences + 100.0 * n_complex / n_words)


_STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "were",
        "will",
        "with",
        "we",
        "our",
        "us",
        "not",
        "no",
    ]
)


def _term_counts(text: str) -> Counter[str]:
    return Counter(w for w in (t.lower() for t in words(text)) if len(w) > 1 and w not in _STOP_WORDS)


def tfidf_cosine(text_a: str, text_b: str) -> float:
    """Cosine similarity of the TF-IDF vectors of two documents (sublinear tf, smoothed idf over the pair).

    1.0 for identical vocabularies used identically, 0.0 for no shared word; NaN if either has no word.
    """
    a, b = _term_counts(text_a), _term_counts(text_b)
    if not a or not b:
        return float("nan")
    idf_shared = 1.0  # ln((1 + 2) / (1 + 2)) + 1
    idf_single = math.log(3.0 / 2.0) + 1.0

    def weight(counts: Counter[str], other: Counter[str]) -> dict[str, float]:
        return {
            t: (1.0 + math.log(c)) * (idf_shared if t in other else idf_single) for t, c in counts.items()
        }

    wa, wb = weight(a, b), weight(b, a)
    dot = sum(v * wb[t] for t, v in wa.items() if t in wb)
    norm = math.sqrt(sum(v * v for v in wa.values())) * math.sqrt(sum(v * v for v in wb.values()))
    return dot / norm
