"""Filing section parsing across heading styles, readability, change versus the previous filing, bad files."""

from __future__ import annotations

import math

import pytest

from alpha_assets.lib.altdata.nlp import FilingError, filing_features, gunning_fog, parse_filing, tfidf_cosine
from alpha_assets.lib.altdata.nlp.filings import filing_features_from_file, read_filing
from alpha_assets.lib.altdata.nlp.text import count_syllables

RISK = (
    "Our customers may reduce orders without notice. A failure of our information systems could disrupt "
    "operations.\nWe are exposed to litigation in several jurisdictions."
)
MDNA = "Net sales increased 8% on higher volumes. Operating margin improved as costs declined."


def _ten_k(risk_heading: str, mdna_heading: str, *, toc: bool = False, eol: str = "\n") -> str:
    contents = (
        "TABLE OF CONTENTS\nItem 1. Business 3\nItem 1A. Risk Factors 9\nItem 7. Management's Discussion and "
        "Analysis of Financial Condition and Results of Operations 30\n\n"
        if toc
        else ""
    )
    text = (
        "UNITED STATES SECURITIES AND EXCHANGE COMMISSION\nFORM 10-K\nTicker: NWT\nFiled: 2024-02-20\n\n"
        f"{contents}PART I\nItem 1. Business\nWe sell things.\n\n{risk_heading}\n{RISK}\n\n"
        "Item 1B. Unresolved Staff Comments\nNone.\n\nPART II\n"
        f"{mdna_heading}\n{MDNA}\n\nItem 7A. Quantitative and Qualitative Disclosures About Market Risk\n"
        "Rates may move.\n\nItem 8. Financial Statements\nSee below.\n"
    )
    return text.replace("\n", eol)


HEADING_VARIANTS = {
    "title case": (
        "Item 1A. Risk Factors",
        "Item 7. Management's Discussion and Analysis of Financial Condition",
    ),
    "upper case with dash": (
        "ITEM 1A — RISK FACTORS",
        "ITEM 7 — MANAGEMENT'S DISCUSSION AND ANALYSIS OF FINANCIAL CONDITION AND RESULTS OF OPERATIONS",
    ),
    "colon": ("Item 1A: Risk factors", "Item 7: Management's discussion and analysis"),
    "title on next line": ("Item 1A.\nRisk Factors", "ITEM 7.\nMANAGEMENT'S DISCUSSION AND ANALYSIS"),
    "no space after dot": ("ITEM 1A.RISK FACTORS", "ITEM 7.MANAGEMENT'S DISCUSSION AND ANALYSIS"),
    "curly apostrophe and nbsp": (
        "Item\xa01A.\xa0Risk Factors",
        "Item\xa07.\xa0Management\u2019s Discussion and Analysis",
    ),
    "indented with part prefix": (
        "   Item 1A - Risk Factors",
        "  PART II, ITEM 7. MANAGEMENT'S DISCUSSION AND ANALYSIS",
    ),
}


@pytest.mark.parametrize("variant", sorted(HEADING_VARIANTS))
def test_risk_factors_and_mdna_are_found_in_every_heading_style(variant):
    risk_heading, mdna_heading = HEADING_VARIANTS[variant]
    parsed = parse_filing(_ten_k(risk_heading, mdna_heading))
    assert parsed.sections["risk_factors"] == RISK
    assert parsed.sections["mdna"] == MDNA
    assert (parsed.form, parsed.ticker, str(parsed.filed)) == ("10-K", "NWT", "2024-02-20")


def test_table_of_contents_and_windows_line_endings_do_not_displace_the_sections():
    text = _ten_k(
        "Item 1A. Risk Factors", "Item 7. Management's Discussion and Analysis", toc=True, eol="\r\n"
    )
    parsed = parse_filing(text)
    assert parsed.sections["risk_factors"] == RISK
    assert parsed.sections["mdna"] == MDNA


def test_ten_q_mdna_is_item_2_and_risk_factors_sit_in_part_two():
    text = (
        "FORM 10-Q\nPART I - FINANCIAL INFORMATION\nItem 1. Financial Statements\nUnaudited.\n"
        "Item 2. Management's Discussion and Analysis of Financial Condition and Results of Operations\n"
        f"{MDNA}\nItem 3. Quantitative and Qualitative Disclosures About Market Risk\nNone.\n"
        f"PART II - OTHER INFORMATION\nItem 1A. Risk Factors\n{RISK}\nItem 6. Exhibits\nListed.\n"
    )
    parsed = parse_filing(text, source="NWT_10-Q_2024-05-01.txt")
    assert parsed.form == "10-Q" and parsed.ticker == "NWT" and str(parsed.filed) == "2024-05-01"
    assert parsed.sections == {"mdna": MDNA, "risk_factors": RISK}


def test_syllables_and_gunning_fog_of_known_sentences():
    assert [count_syllables(w) for w in ("the", "rate", "table", "international", "organization")] == [
        1,
        1,
        2,
        5,
        5,
    ]
    # 9 words, 1 sentence, no word of 3+ syllables: 0.4 * 9
    assert gunning_fog("The quick brown fox jumps over the lazy dog.") == pytest.approx(3.6)
    # 6 words, 1 sentence; complex: international, organization, considerable, difficulties (reported is
    # 2 syllables once -ed is dropped): 0.4 * (6 + 100 * 4 / 6)
    assert gunning_fog("The international organization reported considerable difficulties.") == pytest.approx(
        0.4 * (6 + 400 / 6)
    )
    # proper nouns (Corporation) and hyphenated compounds (Well-established) are not complex; "companies" is:
    # 7 words in 2 sentences, 1 complex word
    assert gunning_fog(
        "Acme Corporation sold software. Well-established companies compete."
    ) == pytest.approx(0.4 * (7 / 2 + 100 / 7))
    assert gunning_fog("") == 0.0


def test_tfidf_cosine_is_one_for_identical_text_and_zero_for_disjoint_text():
    assert tfidf_cosine(RISK, RISK) == pytest.approx(1.0)
    assert tfidf_cosine("alpha beta gamma", "delta epsilon zeta") == 0.0
    assert 0.0 < tfidf_cosine(RISK, RISK + " New sanctions could halt exports entirely.") < 1.0
    assert math.isnan(tfidf_cosine("", RISK))


def test_features_measure_length_readability_and_change_versus_the_previous_filing():
    before = _ten_k("Item 1A. Risk Factors", "Item 7. Management's Discussion and Analysis")
    grown = (
        RISK + "\nNew sanctions could halt our exports entirely. Our auditors identified a material weakness."
    )
    after = before.replace(RISK, grown)
    same = filing_features(before, before)
    assert same["risk_factors_words_change"] == 0.0
    assert same["risk_factors_similarity"] == pytest.approx(1.0)
    assert same["document_similarity"] == pytest.approx(1.0)
    changed = filing_features(after, before)
    assert (same["risk_factors_words"], changed["risk_factors_words"]) == (24, 24 + 13)
    assert changed["risk_factors_words_change"] == pytest.approx(math.log((37 + 1) / (24 + 1)))
    assert changed["risk_factors_similarity"] < 0.9
    assert changed["mdna_similarity"] == pytest.approx(1.0)
    assert changed["mdna_fog"] == pytest.approx(gunning_fog(MDNA))
    assert changed["risk_factors_negative_terms"] > 0
    alone = filing_features(after)
    assert math.isnan(alone["risk_factors_similarity"]) and math.isnan(alone["risk_factors_sentiment"])


def test_section_sentiment_with_a_model_is_lower_for_a_distressed_mdna():
    class KeywordModel:  # a stand-in with the SentimentModel interface; the real model is tested elsewhere
        name = "keywords"

        def score_sentences(self, sentences):
            import numpy as np

            neg = np.array([("declin" in s or "loss" in s) for s in sentences], dtype=float)
            return np.column_stack([neg, np.zeros_like(neg), 1 - neg])

    healthy = _ten_k("Item 1A. Risk Factors", "Item 7. Management's Discussion and Analysis")
    distressed = healthy.replace(MDNA, "Net sales declined 20%. We reported a net loss. Margins held.")
    good, bad = (
        filing_features(healthy, model=KeywordModel()),
        filing_features(distressed, model=KeywordModel()),
    )
    assert good["mdna_sentiment"] == pytest.approx(0.0)  # one of two sentences mentions a decline
    assert bad["mdna_sentiment"] == pytest.approx(-1 / 3)
    assert bad["mdna_negative_share"] == pytest.approx(2 / 3)


def test_empty_binary_and_sectionless_filings_raise_errors_naming_the_file(tmp_path):
    empty = tmp_path / "NWT_10-K_2024-02-20.txt"
    empty.write_text("\n \n")
    with pytest.raises(FilingError, match=r"NWT_10-K_2024-02-20\.txt: empty"):
        read_filing(empty)
    binary = tmp_path / "NWT_10-Q_2024-05-01.txt"
    binary.write_bytes(b"%PDF-1.7\n\x00\x01\x02\x03" * 50)
    with pytest.raises(FilingError, match=r"NWT_10-Q_2024-05-01\.txt: binary"):
        read_filing(binary)
    memo = tmp_path / "NWT_10-Q_2024-08-01.txt"
    memo.write_text("Dear shareholders, thank you for your support.\n")
    with pytest.raises(FilingError, match=r"NWT_10-Q_2024-08-01\.txt: no Item 1A Risk Factors or MD&A"):
        filing_features_from_file(memo)


def test_features_from_files_carry_form_ticker_and_date_from_the_file_name(tmp_path):
    previous = tmp_path / "NWT_10-Q_2024-05-01.txt"
    current = tmp_path / "NWT_10-K_2025-02-20.txt"
    body = _ten_k("Item 1A. Risk Factors", "Item 7. Management's Discussion and Analysis")
    previous.write_text(body.replace("FORM 10-K\nTicker: NWT\nFiled: 2024-02-20\n", ""))
    current.write_text(body.replace("Ticker: NWT\nFiled: 2024-02-20\n", ""))
    features = filing_features_from_file(current, previous)
    assert (features["form"], features["ticker"], str(features["filed"])) == ("10-K", "NWT", "2025-02-20")
    assert features["file"] == str(current)
    assert features["risk_factors_similarity"] == pytest.approx(1.0)


def test_a_batch_of_filings_is_compared_with_each_company_s_previous_filing(tmp_path):
    from alpha_assets.lib.altdata.nlp import filing_features_frame

    body = _ten_k("Item 1A. Risk Factors", "Item 7. Management's Discussion and Analysis")
    body = body.replace("Ticker: NWT\nFiled: 2024-02-20\n", "")
    grown = body.replace(RISK, RISK + "\nNew sanctions could halt our exports entirely.").replace(
        "10-K", "10-Q"
    )
    (tmp_path / "NWT_10-Q_2024-05-01.txt").write_text(grown)
    (tmp_path / "NWT_10-K_2024-02-20.txt").write_text(body)
    (tmp_path / "ZZZ_10-K_2024-03-01.txt").write_text(body)
    (tmp_path / "BAD_10-Q_2024-05-01.txt").write_bytes(b"")
    earlier = tmp_path / "old" / "ZZZ_10-Q_2023-11-01.txt"
    earlier.parent.mkdir()
    earlier.write_text(grown)
    frame, errors = filing_features_frame(sorted(tmp_path.glob("*.txt")), previous_by_ticker={"ZZZ": earlier})
    assert [e.source for e in errors] == [str(tmp_path / "BAD_10-Q_2024-05-01.txt")]
    assert frame.select("ticker", "form").rows() == [("NWT", "10-K"), ("NWT", "10-Q"), ("ZZZ", "10-K")]
    change = frame["risk_factors_words_change"].to_list()
    assert math.isnan(change[0])  # NWT's first filing here has no previous one
    assert change[1] == pytest.approx(math.log((24 + 7 + 1) / (24 + 1)))
    assert change[2] == pytest.approx(math.log((24 + 1) / (24 + 7 + 1)))  # vs the earlier partition's file
