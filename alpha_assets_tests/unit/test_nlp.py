"""Sentence sentiment (default MiniLM head, any local HF classifier) and earnings-call transcript parsing/scoring."""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from alpha_assets.lib.altdata.nlp import (
    LABELS,
    SentimentModel,
    SentimentModelError,
    TranscriptError,
    load_training_sentences,
    parse_transcript,
    read_transcript,
    score_transcript,
    score_transcripts,
    split_sentences,
)
from alpha_assets.lib.altdata.nlp.sentiment import _label_columns, default_encoder_dir

# Measured on the shipped set (375 sentences): held-out accuracy 0.84 (75 sentences), 5-fold CV 0.82 ± 0.03.
ACCURACY_FLOOR = 0.75


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> SentimentModel:
    # one cache folder for the whole session, so other test modules reuse the head trained here
    return SentimentModel.default(cache_dir=tmp_path_factory.getbasetemp() / "nlp_head_cache")


def test_shipped_training_set_is_balanced_and_has_at_least_300_distinct_sentences():
    sentences, labels = load_training_sentences()
    counts = Counter(labels)
    assert len(sentences) >= 300
    assert len(set(sentences)) == len(sentences)
    assert set(counts) == set(LABELS)
    assert max(counts.values()) - min(counts.values()) <= 0.05 * len(sentences)


def test_default_head_held_out_accuracy_is_above_the_measured_floor(model):
    metrics = model.info["metrics"]
    print(
        f"held-out accuracy {metrics['accuracy']:.3f} on {metrics['n_test']} sentences, "
        f"{metrics['cv_folds']}-fold CV {metrics['cv_accuracy_mean']:.3f} ± {metrics['cv_accuracy_std']:.3f}"
    )
    assert metrics["n_test"] >= 60
    assert metrics["n_train"] + metrics["n_test"] == metrics["n_sentences"]
    assert metrics["accuracy"] >= ACCURACY_FLOOR
    assert metrics["cv_accuracy_mean"] >= ACCURACY_FLOOR
    assert metrics["macro_f1"] >= ACCURACY_FLOOR - 0.05


def test_saved_head_is_reused_from_the_cache_without_retraining(model, tmp_path_factory):
    again = SentimentModel.default(cache_dir=tmp_path_factory.getbasetemp() / "nlp_head_cache")
    assert again.info["trained_now"] is False
    assert again.info["head_path"] == model.info["head_path"]
    saved = json.loads(Path(model.info["head_path"]).with_suffix(".json").read_text())
    assert saved["accuracy"] == model.info["metrics"]["accuracy"]


def test_a_changed_training_file_gets_its_own_head(tmp_path):
    sentences, labels = load_training_sentences()
    small = tmp_path / "small.csv"
    with small.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["sentence", "label"])
        for label in LABELS:
            writer.writerows(
                [(s, lab) for s, lab in zip(sentences, labels, strict=True) if lab == label][:20]
            )
    custom = SentimentModel.default(cache_dir=tmp_path / "cache", training_csv=small)
    assert custom.info["trained_now"] is True
    assert custom.info["metrics"]["n_sentences"] == 60
    assert Path(custom.info["head_path"]).parent == tmp_path / "cache"


def test_probabilities_sum_to_one_and_polarity_orders_unseen_sentences(model):
    sentences = [
        "Quarterly revenue smashed expectations and management raised the dividend sharply.",
        "The annual general meeting is scheduled for the third week of April.",
        "The lender reported mounting losses and warned it may breach its debt covenants.",
    ]
    probs = model.score_sentences(sentences)
    assert probs.shape == (3, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    assert list(probs.argmax(axis=1)) == [2, 1, 0]
    score = model.polarity(sentences)
    np.testing.assert_allclose(score, probs[:, 2] - probs[:, 0])
    assert score[0] > score[1] > score[2]
    assert model.score_sentences([]).shape == (0, 3)


def test_repeated_sentences_score_identically_to_a_single_pass(model):
    probs = model.score_sentences(["Please go ahead.", "Margins collapsed.", "Please go ahead."])
    np.testing.assert_allclose(probs[0], probs[2])
    np.testing.assert_allclose(probs[1], model.score_sentences(["Margins collapsed."])[0], atol=1e-6)


@pytest.mark.parametrize(
    ("id2label", "expected"),
    [
        ({0: "positive", 1: "negative", 2: "neutral"}, [1, 2, 0]),  # ProsusAI/finbert's order
        ({0: "Bearish", 1: "Neutral", 2: "Bullish"}, [0, 1, 2]),
        ({0: "NEGATIVE", 1: "POSITIVE"}, [0, None, 1]),
        ({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, [0, 1, 2]),
    ],
)
def test_label_names_from_config_map_onto_negative_neutral_positive(id2label, expected):
    columns, _ = _label_columns(id2label)
    assert columns == expected


def test_unmappable_labels_are_refused():
    with pytest.raises(SentimentModelError, match="cannot map labels"):
        _label_columns({0: "spam", 1: "ham"})


def _tiny_classifier_dir(target: Path) -> Path:
    """A small random BERT sequence classifier saved like a user's FinBERT copy (FinBERT's label order)."""
    from alpha_assets.lib.altdata.nlp._offline import prepare_offline_torch

    prepare_offline_torch()
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    encoder = default_encoder_dir()
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=3,
        id2label={0: "positive", 1: "negative", 2: "neutral"},
        label2id={"positive": 0, "negative": 1, "neutral": 2},
    )
    BertForSequenceClassification(config).eval().save_pretrained(target)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(encoder / name, target / name)
    return target


def test_any_local_sequence_classification_directory_loads_with_its_own_label_order(tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = _tiny_classifier_dir(tmp_path / "finbert-like")
    model = SentimentModel.from_directory(path)
    sentences = ["Profits rose.", "Profits fell sharply in the quarter."]
    probs = model.score_sentences(sentences)

    reference = AutoModelForSequenceClassification.from_pretrained(path, local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    with torch.inference_mode():
        for i, s in enumerate(sentences):
            p = torch.softmax(reference(**tokenizer([s], return_tensors="pt")).logits, -1)[0].numpy()
            # the model's columns are (positive, negative, neutral); ours are (negative, neutral, positive)
            np.testing.assert_allclose(probs[i], [p[1], p[2], p[0]], atol=1e-5)
    assert model.info["kind"] == "sequence-classification"


def test_an_encoder_without_classification_head_or_a_missing_directory_is_refused(tmp_path):
    with pytest.raises(SentimentModelError, match="not a sequence-classification model"):
        SentimentModel.from_directory(default_encoder_dir())
    with pytest.raises(SentimentModelError, match="does not exist"):
        SentimentModel.from_directory(tmp_path / "nowhere")


# --- transcripts -----------------------------------------------------------------------------------------

OWN_LINE_TRANSCRIPT = """\
Northwind Traders (NWT) Q2 2024 Earnings Call Transcript
Date: July 25, 2024
Call time: 8:30 AM ET

Prepared Remarks:

Operator
Good morning and welcome to the Northwind Traders call.

Dana Ruiz -- President and Chief Executive Officer
Revenue grew strongly in the quarter. Our new stores in the U.S. are performing well ahead of plan.

Sam Lee -- Executive Vice President and CFO
Gross margin expanded by 120 basis points.

Questions & Answers:

Operator
Our first question comes from Alex Kim with Rivera & Co.

Alex Kim -- Analyst, Rivera & Co.
How should we think about inventory into the holiday season?

Dana Ruiz
We feel good about inventory.
It is clean and well positioned.

Sam Lee
Freight costs remain a headwind.
"""

INLINE_TRANSCRIPT = """\
Company: Contoso Ltd
Ticker: CTSO
Date: 2024-03-01
Presentation
Operator: Welcome to the Contoso conference call.
Maria Gomez, Chief Executive Officer: Thank you. Demand was weak and margins fell.
Q&A Session
Tom Baker, Analyst at Fjord Securities: Can you talk about pricing?
Maria Gomez: Pricing is stable.
"""


def test_transcript_parsing_finds_header_sections_speakers_and_roles():
    parsed = parse_transcript(OWN_LINE_TRANSCRIPT)
    assert (parsed.company, parsed.ticker, str(parsed.call_date), parsed.call_time) == (
        "Northwind Traders",
        "NWT",
        "2024-07-25",
        "8:30 AM ET",
    )
    assert parsed.speakers == {
        "Operator": "Operator",
        "Dana Ruiz": "CEO",
        "Sam Lee": "CFO",
        "Alex Kim": "Analyst",
    }
    sections = parsed.sections
    assert [t.speaker for t in sections["prepared"]] == ["Operator", "Dana Ruiz", "Sam Lee"]
    assert [t.role for t in sections["qa"]] == ["Operator", "Analyst", "CEO", "CFO"]
    # name-only turns in Q&A keep the role given earlier; hard-wrapped lines join one turn
    assert sections["qa"][2].text == "We feel good about inventory. It is clean and well positioned."
    texts = [s.text for s in parsed.sentences]
    assert "Our new stores in the U.S. are performing well ahead of plan." in texts
    assert len([s for s in parsed.sentences if s.role == "CEO"]) == 4


def test_inline_speaker_layout_parses_with_roles():
    parsed = parse_transcript(INLINE_TRANSCRIPT)
    assert parsed.ticker == "CTSO" and str(parsed.call_date) == "2024-03-01"
    assert [(t.speaker, t.role, t.section) for t in parsed.turns] == [
        ("Operator", "Operator", "prepared"),
        ("Maria Gomez", "CEO", "prepared"),
        ("Tom Baker", "Analyst", "qa"),
        ("Maria Gomez", "CEO", "qa"),
    ]


PARTICIPANT_LIST_TRANSCRIPT = """\
Fabrikam, Inc. (FAB) Q4 2023 Earnings Conference Call February 8, 2024 5:00 PM ET

Executives
Lena Park - Chief Executive Officer
Raj Mehta - Chief Financial Officer

Analysts
Chris Young - Halvard Capital

Operator
Good afternoon, everyone.
Lena Park
Thanks. Bookings were a record.
Chris Young
What about churn?
Raj Mehta
Churn was flat.
"""


def test_participant_lists_give_roles_to_name_only_turns():
    parsed = parse_transcript(PARTICIPANT_LIST_TRANSCRIPT)
    assert parsed.ticker == "FAB" and parsed.company == "Fabrikam, Inc."
    assert parsed.speakers == {
        "Operator": "Operator",
        "Lena Park": "CEO",
        "Chris Young": "Analyst",
        "Raj Mehta": "CFO",
    }
    assert [t.text for t in parsed.turns][1:] == [
        "Thanks. Bookings were a record.",
        "What about churn?",
        "Churn was flat.",
    ]


def test_sentence_splitter_keeps_abbreviations_and_decimals_inside_sentences():
    text = "Sales at Acme Inc. rose 3.5% in the U.S. market. Mr. Smith said so! Was it enough? Yes."
    assert split_sentences(text) == [
        "Sales at Acme Inc. rose 3.5% in the U.S. market.",
        "Mr. Smith said so!",
        "Was it enough?",
        "Yes.",
    ]


def test_empty_transcript_file_raises_an_error_naming_the_file(tmp_path):
    path = tmp_path / "ABC_2024-01-05.txt"
    path.write_text("  \n\n")
    with pytest.raises(TranscriptError, match=r"ABC_2024-01-05\.txt: empty"):
        read_transcript(path)


def test_binary_transcript_file_raises_an_error_naming_the_file(tmp_path):
    path = tmp_path / "ABC_2024-01-06.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(TranscriptError, match=r"ABC_2024-01-06\.txt: binary"):
        read_transcript(path)


def test_text_without_speaker_turns_raises_an_error_naming_the_file(tmp_path):
    path = tmp_path / "ABC_2024-01-07.txt"
    path.write_text("this is a shopping list\nmilk\neggs\n")
    with pytest.raises(TranscriptError, match=r"ABC_2024-01-07\.txt: no speaker turns"):
        read_transcript(path)


def test_score_transcript_gives_section_role_and_call_sentiment(model, tmp_path):
    path = tmp_path / "NWT_2024-07-25.txt"
    path.write_text(
        "Northwind Traders (NWT) Q2 2024 Earnings Call\nDate: 2024-07-25\n\nPrepared Remarks\n\n"
        "Operator\nWelcome to the call.\n\n"
        "Dana Ruiz -- Chief Executive Officer\n"
        "We delivered record profits and raised our outlook. Demand has never been stronger.\n\n"
        "Question-and-Answer Session\n\n"
        "Alex Kim -- Analyst, Rivera Securities\nWhat happened to the European business?\n\n"
        "Dana Ruiz -- Chief Executive Officer\n"
        "Sales in Europe collapsed and we are closing plants. We had to write down the whole division.\n"
    )
    result = score_transcript(model, path)
    assert result["ticker"] == "NWT" and str(result["call_date"]) == "2024-07-25"
    assert result["n_sentences"] == 5  # the operator's line is not counted
    assert result["prepared_sentiment"] > 0.3 > -0.3 > result["qa_sentiment"]
    assert set(result["role_sentiment"]) == {"CEO", "Analyst"}
    ceo = [s["score"] for s in result["sentences"] if s["role"] == "CEO"]
    assert result["role_sentiment"]["CEO"] == pytest.approx(np.mean(ceo))
    spoken = [s["score"] for s in result["sentences"] if s["role"] != "Operator"]
    assert result["call_sentiment"] == pytest.approx(np.mean(spoken))


def test_score_transcripts_returns_rows_for_good_files_and_errors_for_bad_ones(model, tmp_path):
    good = tmp_path / "NWT_2024-07-25.txt"
    good.write_text(OWN_LINE_TRANSCRIPT)
    empty = tmp_path / "BAD_2024-07-25.txt"
    empty.write_text("")
    frame, errors = score_transcripts(model, [good, empty])
    assert frame.height == 1 and frame["ticker"].to_list() == ["NWT"]
    assert frame["ceo_sentiment"].is_not_null().all() and frame["analyst_sentiment"].is_not_null().all()
    assert len(errors) == 1 and errors[0].source == str(empty) and "empty" in str(errors[0])


def test_offline_preparation_leaves_a_working_nms_equal_to_the_reference_kernel():
    import torch

    from alpha_assets.lib.altdata.nlp._offline import prepare_offline_torch
    from alpha_assets.lib.altdata.vision.torchvision_shim import nms_reference_kernel

    prepare_offline_torch()
    _nms_cpu = torch.ops.torchvision.nms  # compiled ops where they load, the shared shim otherwise

    gen = torch.Generator().manual_seed(0)
    xy = torch.rand(300, 2, generator=gen) * 100
    boxes = torch.cat([xy, xy + 5 + torch.rand(300, 2, generator=gen) * 30], dim=1)
    scores = torch.rand(300, generator=gen).round(decimals=2)  # ties on purpose
    for threshold in (0.3, 0.5, 0.7):
        assert torch.equal(_nms_cpu(boxes, scores, threshold), nms_reference_kernel(boxes, scores, threshold))
    assert _nms_cpu(torch.zeros(0, 4), torch.zeros(0), 0.5).numel() == 0
