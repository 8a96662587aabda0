"""Cross-modal fusion encoder: one embedding per ticker-day from imagery, text, web and price features.

Each modality (a group of feature-matrix columns, e.g. parking + tanks = "image") is projected to a shared hidden
size, tagged with a learned modality embedding and becomes one token; a Transformer encoder attends across the
tokens of a ticker-day and the pooled result is the fused embedding (``out_dim``). Missing modalities are not
attended (key padding mask); at least one modality is always present.

Pretraining is self-supervised and contrastive (InfoNCE, temperature ``cfg.temperature``), with two terms:

- cross-modal pairs: every modality is encoded alone (each token attends only to itself) and a per-modality
  projection head maps it to the contrastive space; the embeddings of two modalities of the same ticker-day are a
  positive pair, the other rows of the batch are negatives. Where the alt data measures a latent driver that
  the other modalities also see, this aligns them.
- fused views: the present modalities are split into two disjoint groups, each group fused by the full encoder;
  the two fused embeddings of the same ticker-day are a positive pair. This trains the cross-attention and the
  output layer that produce the embedding the models consume.

Training is reproducible: torch's RNG is forked and seeded, shuffling uses its own generator, deterministic
algorithms and a fixed thread count are switched on for the duration and restored after. Same seed and data ->
bit-identical weights and embeddings.

torch is imported inside functions only (the Dagster code location must load in seconds).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

STD_FLOOR = 1e-6  # a constant column standardises to 0, not to inf
RETRIEVAL_ROWS = 2000  # held-out rows scored for the alignment metric (n x n similarity matrix)


@dataclass(frozen=True)
class FusionConfig:
    hidden: int = 512
    heads: int = 8
    layers: int = 4
    out_dim: int = 256
    dropout: float = 0.1
    epochs: int = 20
    batch_size: int = 256
    lr: float = 1e-3
    temperature: float = 0.1
    seed: int = 7
    threads: int = 2

    @classmethod
    def demo(cls) -> FusionConfig:
        """Small sizes for the demo world and tests (~0.1 M parameters instead of ~13 M).

        One thread: at this size a step is many tiny kernels, and a second thread only adds synchronisation
        (measured 3-6x slower with 2 threads on a busy 2-core machine).
        """
        return cls(hidden=64, heads=4, layers=2, out_dim=16, dropout=0.1, epochs=8, batch_size=128, threads=1)


def modality_arrays(matrix: pl.DataFrame, modalities: dict[str, list[str]]) -> dict[str, np.ndarray]:
    """float32 arrays (n, len(columns)) per modality, in the matrix's row order; nulls stay NaN.

    NaN marks "not known at the cut-off"; ``modality_masks`` turns a row with no value of a modality into a
    missing token, and the encoder neutral-fills the rest.
    """
    out: dict[str, np.ndarray] = {}
    for name, columns in modalities.items():
        if not columns:
            raise ValueError(f"modality {name!r} has no columns")
        missing = [c for c in columns if c not in matrix.columns]
        if missing:
            raise KeyError(f"modality {name!r}: columns not in the matrix: {missing}")
        frame = matrix.select([pl.col(c).cast(pl.Float32) for c in columns])
        out[name] = frame.to_numpy().astype(np.float32, copy=False).reshape(matrix.height, len(columns))
    return out


def modality_masks(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """True where the modality has at least one finite value on the row (present), False where entirely missing."""
    return {name: np.isfinite(a).any(axis=1) for name, a in arrays.items()}


def _in_trained_order(arrays: dict[str, np.ndarray], dims: dict[str, int]) -> dict[str, np.ndarray]:
    return {name: arrays[name] for name in dims} if set(arrays) == set(dims) else arrays


def _check_arrays(arrays: dict[str, np.ndarray], dims: dict[str, int] | None = None) -> int:
    if not arrays:
        raise ValueError("no modalities")
    sizes = {name: a.shape[0] for name, a in arrays.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"modalities have different row counts: {sizes}")
    if dims is not None:
        if list(arrays) != list(dims):
            raise ValueError(
                f"modalities {list(arrays)} differ from the trained ones {list(dims)} (order matters)"
            )
        for name, d in dims.items():
            if arrays[name].ndim != 2 or arrays[name].shape[1] != d:
                raise ValueError(f"modality {name!r}: expected {d} columns, got shape {arrays[name].shape}")
    return next(iter(sizes.values()))


def _present(arrays: dict[str, np.ndarray], masks: dict[str, np.ndarray] | None) -> np.ndarray:
    """(n, M) bool presence; a row with nothing present keeps its first modality (neutral-filled) as a token."""
    derived = modality_masks(arrays)
    if masks is not None:
        for name, m in masks.items():
            if name in derived:
                derived[name] = derived[name] & np.asarray(m, dtype=bool)
    present = np.stack([derived[name] for name in arrays], axis=1)
    empty = ~present.any(axis=1)
    present[empty, 0] = True
    return present


def build_encoder(dims: dict[str, int], cfg: FusionConfig) -> Any:
    """The fusion module (a torch.nn.Module) for modalities of the given widths; torch is imported here."""
    import torch
    from torch import nn

    if cfg.hidden % cfg.heads:
        raise ValueError(f"hidden {cfg.hidden} is not a multiple of heads {cfg.heads}")

    class FusionEncoder(nn.Module):
        """Modality tokens -> Transformer encoder -> masked mean pool -> out_dim; plus contrastive heads."""

        def __init__(self) -> None:
            super().__init__()
            self.names = list(dims)
            self.projections = nn.ModuleDict({n: nn.Linear(d, cfg.hidden) for n, d in dims.items()})
            self.modality_embedding = nn.Parameter(torch.randn(len(dims), cfg.hidden) * 0.02)
            layer = nn.TransformerEncoderLayer(
                d_model=cfg.hidden,
                nhead=cfg.heads,
                dim_feedforward=4 * cfg.hidden,
                dropout=cfg.dropout,
                batch_first=True,
                norm_first=True,
            )
            # nested tensors would zero the padded tokens differently in eval and train: keep one code path
            self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(cfg.hidden)
            self.output = nn.Linear(cfg.hidden, cfg.out_dim)
            self.modality_heads = nn.ModuleDict({n: nn.Linear(cfg.out_dim, cfg.out_dim) for n in dims})
            self.fused_head = nn.Linear(cfg.out_dim, cfg.out_dim)

        def tokens(self, xs: list[torch.Tensor]) -> torch.Tensor:
            projected = [self.projections[n](x) for n, x in zip(self.names, xs, strict=True)]
            return torch.stack(projected, dim=1) + self.modality_embedding

        def forward(self, xs: list[torch.Tensor], present: torch.Tensor) -> torch.Tensor:
            """Fused embedding (batch, out_dim); ``present`` (batch, M) bool, True = attend to this modality."""
            hidden = self.encoder(self.tokens(xs), src_key_padding_mask=~present)
            weights = present.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)
            return self.output(self.norm(pooled))

        def unimodal(self, xs: list[torch.Tensor]) -> torch.Tensor:
            """Each modality encoded alone (batch, M, out_dim): every token attends only to itself."""
            m = len(self.names)
            alone = ~torch.eye(m, dtype=torch.bool)  # True = not allowed to attend
            hidden = self.encoder(self.tokens(xs), mask=alone)
            return self.output(self.norm(hidden))

    return FusionEncoder()


class FusionModel:
    """A trained fusion encoder with its input standardisation; ``embed`` gives the fused embeddings."""

    def __init__(
        self,
        module: Any,
        config: FusionConfig,
        dims: dict[str, int],
        means: dict[str, np.ndarray],
        stds: dict[str, np.ndarray],
    ) -> None:
        self.module = module
        self.config = config
        self.dims = dict(dims)
        self.means = {n: np.asarray(v, dtype=np.float32) for n, v in means.items()}
        self.stds = {n: np.asarray(v, dtype=np.float32) for n, v in stds.items()}

    @property
    def parameters_count(self) -> int:
        return int(sum(p.numel() for p in self.module.parameters()))

    def standardise(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Training-period z-scores; unknown values become 0 (the training mean), the neutral fill."""
        out = {}
        for name in self.dims:
            z = (arrays[name].astype(np.float32) - self.means[name]) / self.stds[name]
            out[name] = np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
        return out

    def embed(
        self,
        arrays: dict[str, np.ndarray],
        masks: dict[str, np.ndarray] | None = None,
        batch_size: int = 2048,
    ) -> np.ndarray:
        """Fused embeddings (n, out_dim) float32. ``masks``: name -> bool (True = present), ANDed with the data."""
        import torch

        arrays = _in_trained_order(arrays, self.dims)
        n = _check_arrays(arrays, self.dims)
        present = _present(arrays, masks)
        z = self.standardise(arrays)
        out = np.zeros((n, self.config.out_dim), dtype=np.float32)
        with _torch_session(self.config), torch.no_grad():
            self.module.eval()
            for start in range(0, n, batch_size):
                sl = slice(start, start + batch_size)
                xs = [torch.from_numpy(_fixed_rows(z[name][sl], batch_size)) for name in self.dims]
                mask = torch.from_numpy(_fixed_rows(present[sl], batch_size))
                out[sl] = self.module(xs, mask).numpy()[: len(present[sl])]
        return out

    def embed_modalities(
        self, arrays: dict[str, np.ndarray], batch_size: int = 2048
    ) -> dict[str, np.ndarray]:
        """Per-modality embeddings in the contrastive space (L2-normalised), for retrieval diagnostics."""
        import torch

        arrays = _in_trained_order(arrays, self.dims)
        n = _check_arrays(arrays, self.dims)
        z = self.standardise(arrays)
        parts: dict[str, list[np.ndarray]] = {name: [] for name in self.dims}
        with _torch_session(self.config), torch.no_grad():
            self.module.eval()
            for start in range(0, n, batch_size):
                sl = slice(start, start + batch_size)
                rows = len(z[next(iter(self.dims))][sl])
                xs = [torch.from_numpy(_fixed_rows(z[name][sl], batch_size)) for name in self.dims]
                heads = _modality_projections(self.module, xs)
                for i, name in enumerate(self.dims):
                    parts[name].append(heads[:rows, i].numpy())
        return {
            name: np.concatenate(p) if p else np.zeros((0, self.config.out_dim), np.float32)
            for name, p in parts.items()
        }

    def save(self, path: Path | str) -> Path:
        import torch

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "config": asdict(self.config),
                "dims": self.dims,
                "means": {n: torch.from_numpy(v) for n, v in self.means.items()},
                "stds": {n: torch.from_numpy(v) for n, v in self.stds.items()},
                "state_dict": self.module.state_dict(),
            },
            path,
        )
        return path

    @classmethod
    def load(cls, path: Path | str) -> FusionModel:
        import torch

        state = torch.load(Path(path), map_location="cpu", weights_only=True)
        config = FusionConfig(**state["config"])
        dims = {str(n): int(d) for n, d in state["dims"].items()}
        module = build_encoder(dims, config)
        module.load_state_dict(state["state_dict"])
        module.eval()
        means = {n: v.numpy() for n, v in state["means"].items()}
        stds = {n: v.numpy() for n, v in state["stds"].items()}
        return cls(module, config, dims, means, stds)


def _fixed_rows(a: np.ndarray, rows: int) -> np.ndarray:
    """``a`` padded to ``rows`` rows with zeros (True for a mask: a padded row attends to its zero tokens).

    Every inference forward then has one shape, so a row's embedding is the same bits whichever rows share its
    batch: a batch of one or two rows ran other kernels and differed by ~4e-7 from the same row in a larger batch
    (enough to move a one-day run's scores against a range run's)."""
    pad = rows - len(a)
    if pad <= 0:
        return a
    fill = np.ones if a.dtype == np.bool_ else np.zeros
    return np.concatenate([a, fill((pad, *a.shape[1:]), dtype=a.dtype)])


@contextlib.contextmanager
def _torch_session(cfg: FusionConfig) -> Iterator[None]:
    """Fixed threads + deterministic kernels for the duration; the process-wide settings are restored after."""
    import torch

    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(max(1, cfg.threads))
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(threads)


def _modality_projections(module: Any, xs: list[Any]) -> Any:
    import torch
    import torch.nn.functional as F

    unimodal = module.unimodal(xs)
    heads = [module.modality_heads[name](unimodal[:, i]) for i, name in enumerate(module.names)]
    return F.normalize(torch.stack(heads, dim=1), dim=-1)


def _info_nce(a: Any, b: Any, temperature: float) -> Any:
    """Symmetric InfoNCE: row i of ``a`` should pick row i of ``b`` among the batch (and vice versa)."""
    import torch
    import torch.nn.functional as F

    logits = a @ b.T / temperature
    target = torch.arange(a.shape[0])
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def _split_views(present: Any, generator: Any) -> tuple[Any, Any]:
    """Two disjoint modality groups per batch (a random permutation cut at a random point)."""
    import torch

    m = present.shape[1]
    order = torch.randperm(m, generator=generator)
    cut = int(torch.randint(1, m, (1,), generator=generator)) if m > 1 else 1
    group_a = torch.zeros(m, dtype=torch.bool)
    group_a[order[:cut]] = True
    return present & group_a, present & ~group_a


def _contrastive_loss(module: Any, xs: list[Any], present: Any, cfg: FusionConfig, generator: Any) -> Any:
    import torch
    import torch.nn.functional as F

    terms = []
    z = _modality_projections(module, xs)
    m = present.shape[1]
    for i in range(m):
        for j in range(i + 1, m):
            both = present[:, i] & present[:, j]
            if int(both.sum()) >= 2:
                terms.append(_info_nce(z[both, i], z[both, j], cfg.temperature))
    if m > 1:
        view_a, view_b = _split_views(present, generator)
        rows = view_a.any(dim=1) & view_b.any(dim=1)
        if int(rows.sum()) >= 2:
            sub = [x[rows] for x in xs]
            fused = module(sub, view_a[rows])
            fused_b = module(sub, view_b[rows])
            ha = F.normalize(module.fused_head(fused), dim=-1)
            hb = F.normalize(module.fused_head(fused_b), dim=-1)
            terms.append(_info_nce(ha, hb, cfg.temperature))
    if not terms:
        return torch.zeros((), requires_grad=True)
    return torch.stack(terms).mean()


def _retrieval(
    model: FusionModel, arrays: dict[str, np.ndarray], present: np.ndarray
) -> tuple[dict[str, float], float]:
    """Top-1 accuracy of finding row i's modality B from its modality A among the held-out rows, and chance."""
    z = model.embed_modalities(arrays)
    names = list(model.dims)
    scores: dict[str, float] = {}
    chance: list[float] = []
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            if i == j:
                continue
            rows = np.flatnonzero(present[:, i] & present[:, j])
            if rows.size < 2:
                continue
            sims = z[a][rows] @ z[b][rows].T
            scores[f"{a}->{b}"] = float(np.mean(np.argmax(sims, axis=1) == np.arange(rows.size)))
            chance.append(1.0 / rows.size)
    return scores, float(np.mean(chance)) if chance else math.nan


def train_fusion(
    arrays: dict[str, np.ndarray],
    cfg: FusionConfig,
    *,
    masks: dict[str, np.ndarray] | None = None,
    holdout: float = 0.2,
) -> tuple[FusionModel, dict]:
    """Contrastive pretraining on ticker-day rows; returns the model and its metrics.

    The last ``holdout`` share of rows (the latest days when the matrix is date-ordered) is not trained on and
    scores the alignment: top-1 retrieval of modality B from modality A, against chance = 1 / rows scored.
    Metrics: initial_loss / final_loss (the same deterministic evaluation on the training rows before and after
    training), loss_history (mean training loss per epoch), epochs, seconds, parameters, train_rows,
    holdout_rows, alignment_top1 (mean over ordered modality pairs), alignment_chance, alignment_lift,
    alignment_by_pair.
    """
    import torch

    started = time.perf_counter()
    n = _check_arrays(arrays)
    dims = {name: int(a.shape[1]) for name, a in arrays.items()}
    present_all = _present(arrays, masks)
    n_hold = int(round(n * holdout)) if n >= 10 else 0
    n_train = n - n_hold
    if n_train < 2:
        raise ValueError(f"need at least 2 training rows, got {n_train}")

    means, stds = {}, {}
    for i, (name, a) in enumerate(arrays.items()):
        rows = a[:n_train][present_all[:n_train, i]].astype(np.float64)
        with np.errstate(all="ignore"):
            mu = np.nanmean(rows, axis=0) if rows.size else np.zeros(a.shape[1])
            sd = np.nanstd(rows, axis=0) if rows.size else np.ones(a.shape[1])
        means[name] = np.nan_to_num(mu, nan=0.0).astype(np.float32)
        stds[name] = np.maximum(np.nan_to_num(sd, nan=1.0), STD_FLOOR).astype(np.float32)

    with _torch_session(cfg), torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        module = build_encoder(dims, cfg)
        model = FusionModel(module, cfg, dims, means, stds)
        z = model.standardise({name: a[:n_train] for name, a in arrays.items()})
        xs_all = [torch.from_numpy(z[name]) for name in dims]
        present_t = torch.from_numpy(present_all[:n_train])

        def evaluate() -> float:
            # fixed generator: the same group split before and after training, so the two losses compare
            module.eval()
            gen = torch.Generator().manual_seed(cfg.seed + 1)
            losses, weights = [], []
            with torch.no_grad():
                for start in range(0, n_train, cfg.batch_size):
                    sl = slice(start, start + cfg.batch_size)
                    if present_t[sl].shape[0] < 2:
                        continue
                    loss = _contrastive_loss(module, [x[sl] for x in xs_all], present_t[sl], cfg, gen)
                    losses.append(float(loss))
                    weights.append(present_t[sl].shape[0])
            return float(np.average(losses, weights=weights)) if losses else math.nan

        initial_loss = evaluate()
        optimiser = torch.optim.AdamW(module.parameters(), lr=cfg.lr, weight_decay=1e-4)
        shuffle = torch.Generator().manual_seed(cfg.seed)
        history = []
        for _ in range(cfg.epochs):
            module.train()
            order = torch.randperm(n_train, generator=shuffle)
            epoch_losses = []
            for start in range(0, n_train, cfg.batch_size):
                idx = order[start : start + cfg.batch_size]
                if idx.numel() < 2:
                    continue
                loss = _contrastive_loss(module, [x[idx] for x in xs_all], present_t[idx], cfg, shuffle)
                optimiser.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
                optimiser.step()
                epoch_losses.append(float(loss.detach()))
            history.append(float(np.mean(epoch_losses)) if epoch_losses else math.nan)
        final_loss = evaluate()
        module.eval()

    metrics: dict[str, Any] = {
        "initial_loss": initial_loss,
        "final_loss": final_loss,
        "loss_history": history,
        "epochs": cfg.epochs,
        "parameters": model.parameters_count,
        "train_rows": n_train,
        "holdout_rows": n_hold,
    }
    if n_hold >= 2:
        hold = slice(n - min(n_hold, RETRIEVAL_ROWS), n)
        by_pair, chance = _retrieval(model, {name: a[hold] for name, a in arrays.items()}, present_all[hold])
        top1 = float(np.mean(list(by_pair.values()))) if by_pair else math.nan
        metrics |= {
            "alignment_top1": top1,
            "alignment_chance": chance,
            "alignment_lift": top1 / chance if chance else math.nan,
            "alignment_by_pair": by_pair,
        }
    metrics["seconds"] = time.perf_counter() - started
    return model, metrics
