"""Text alternative data: earnings-call transcripts and regulatory filings turned into numbers.

- ``sentiment``: ``SentimentModel`` (any local Hugging Face classifier, or the offline default: all-MiniLM-L6-v2
  embeddings + a head trained on the shipped ``financial_sentences.csv``), ``train_default_head``.
- ``transcripts``: ``parse_transcript``, ``score_transcript``, ``score_transcripts``, ``TranscriptError``.
- ``filings``: ``parse_filing``, ``filing_features``, ``filing_features_from_file``, ``filing_features_frame``,
  ``FilingError``.
- ``text``: sentence splitting, Gunning fog, TF-IDF cosine, safe document reading.

Importing this package is cheap: torch and transformers load only when a model is built.
"""

from alpha_assets.lib.altdata.nlp.filings import (
    FilingError,
    ParsedFiling,
    filing_features,
    filing_features_frame,
    filing_features_from_file,
    parse_filing,
    read_filing,
)
from alpha_assets.lib.altdata.nlp.sentiment import (
    LABELS,
    SentimentModel,
    SentimentModelError,
    load_training_sentences,
    polarity,
    train_default_head,
    training_file,
)
from alpha_assets.lib.altdata.nlp.text import DocumentError, gunning_fog, split_sentences, tfidf_cosine
from alpha_assets.lib.altdata.nlp.transcripts import (
    ParsedTranscript,
    TranscriptError,
    parse_transcript,
    read_transcript,
    score_transcript,
    score_transcript_text,
    score_transcripts,
    transcript_row,
    transcript_row_schema,
)

__all__ = [
    "LABELS",
    "DocumentError",
    "FilingError",
    "ParsedFiling",
    "ParsedTranscript",
    "SentimentModel",
    "SentimentModelError",
    "TranscriptError",
    "filing_features",
    "filing_features_frame",
    "filing_features_from_file",
    "gunning_fog",
    "load_training_sentences",
    "parse_filing",
    "parse_transcript",
    "polarity",
    "read_filing",
    "read_transcript",
    "score_transcript",
    "score_transcript_text",
    "score_transcripts",
    "split_sentences",
    "tfidf_cosine",
    "train_default_head",
    "training_file",
    "transcript_row",
    "transcript_row_schema",
]
