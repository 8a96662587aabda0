"""The cross-modal fusion encoder: reproducible, learns the shared driver, embeds rows with missing modalities."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl
import pytest

from alpha_assets.lib.models.fusion import (
    FusionConfig,
    FusionModel,
    build_encoder,
    modality_arrays,
    modality_masks,
    train_fusion,
)

ROWS = 600
CONFIG = replace(FusionConfig.demo(), epochs=6, batch_size=100, threads=1)


def shared_driver_arrays(rows: int = ROWS, seed: int = 0) -> dict[str, np.ndarray]:
    """image and text both measure a 3-factor latent driver (plus noise); price is unrelated noise."""
    rng = np.random.default_rng(seed)
    driver = rng.normal(size=(rows, 3))
    image = driver @ rng.normal(size=(3, 5)) + 0.3 * rng.normal(size=(rows, 5))
    text = driver @ rng.normal(size=(3, 4)) + 0.3 * rng.normal(size=(rows, 4))
    price = rng.normal(size=(rows, 6))
    arrays = {"image": image, "text": text, "price": price}
    arrays = {name: a.astype(np.float32) for name, a in arrays.items()}
    arrays["image"][:40] = np.nan  # no imagery delivered for the first 40 ticker-days
    return arrays


@pytest.fixture(scope="module")
def trained() -> tuple[FusionModel, dict, dict[str, np.ndarray]]:
    arrays = shared_driver_arrays()
    model, metrics = train_fusion(arrays, CONFIG)
    return model, metrics, arrays


def test_modality_arrays_group_matrix_columns_and_keep_nulls_as_nan():
    matrix = pl.DataFrame({"parking_cars": [1.0, None], "call_sentiment": [0.2, 0.3], "ret_1": [0.01, -0.02]})
    arrays = modality_arrays(
        matrix, {"image": ["parking_cars"], "text": ["call_sentiment"], "price": ["ret_1"]}
    )
    assert list(arrays) == ["image", "text", "price"]
    assert arrays["image"].dtype == np.float32 and arrays["image"].shape == (2, 1)
    assert np.isnan(arrays["image"][1, 0])
    assert modality_masks(arrays)["image"].tolist() == [True, False]
    with pytest.raises(KeyError):
        modality_arrays(matrix, {"web": ["web_price_change"]})


def test_embeddings_have_one_row_per_ticker_day_of_out_dim(trained):
    model, _, arrays = trained
    embeddings = model.embed(arrays)
    assert embeddings.shape == (ROWS, CONFIG.out_dim)
    assert embeddings.dtype == np.float32
    assert np.isfinite(embeddings).all()  # rows without imagery embed too


def test_same_seed_gives_identical_embeddings(trained):
    model, _, arrays = trained
    again, _ = train_fusion(arrays, CONFIG)
    np.testing.assert_array_equal(again.embed(arrays), model.embed(arrays))


def test_contrastive_loss_decreases(trained):
    _, metrics, _ = trained
    assert metrics["final_loss"] < 0.8 * metrics["initial_loss"]
    assert len(metrics["loss_history"]) == CONFIG.epochs
    assert metrics["parameters"] > 0 and metrics["epochs"] == CONFIG.epochs


def test_modalities_sharing_a_driver_retrieve_each_other_far_above_chance(trained):
    _, metrics, _ = trained
    by_pair = metrics["alignment_by_pair"]
    chance = metrics["alignment_chance"]
    assert by_pair["image->text"] > 10 * chance
    assert by_pair["text->image"] > 10 * chance
    # price shares nothing with text: no better than a few lucky hits
    assert by_pair["text->price"] < by_pair["text->image"] / 3


def test_save_and_load_give_identical_embeddings(trained, tmp_path):
    model, _, arrays = trained
    path = model.save(tmp_path / "fusion" / "model.pt")
    loaded = FusionModel.load(path)
    assert loaded.config == model.config and loaded.dims == model.dims
    np.testing.assert_array_equal(loaded.embed(arrays), model.embed(arrays))


def test_a_masked_modality_is_not_attended(trained):
    model, _, arrays = trained
    masks = {"image": np.zeros(ROWS, dtype=bool)}
    masked = model.embed(arrays, masks=masks)
    scrambled = dict(
        arrays, image=np.random.default_rng(1).normal(size=arrays["image"].shape).astype(np.float32)
    )
    # whatever the masked imagery says, the embedding is the same
    np.testing.assert_allclose(model.embed(scrambled, masks=masks), masked, atol=1e-6)
    # and it differs from the embedding that does attend to the imagery
    assert np.abs(model.embed(arrays)[40:] - masked[40:]).max() > 1e-3


def test_a_row_with_every_modality_missing_still_embeds(trained):
    model, _, arrays = trained
    empty = {name: np.full((3, a.shape[1]), np.nan, dtype=np.float32) for name, a in arrays.items()}
    embeddings = model.embed(empty)
    assert embeddings.shape == (3, CONFIG.out_dim) and np.isfinite(embeddings).all()


def test_embedding_rejects_modalities_the_model_was_not_trained_on(trained):
    model, _, arrays = trained
    with pytest.raises(ValueError):
        model.embed({"price": arrays["price"]})


def test_seed_sizes_build_a_13m_parameter_encoder_that_runs_forward():
    import torch

    cfg = FusionConfig()
    assert (cfg.hidden, cfg.heads, cfg.layers, cfg.out_dim) == (512, 8, 4, 256)
    dims = {"image": 9, "text": 10, "web": 3, "price": 53}
    module = build_encoder(dims, cfg)
    parameters = sum(p.numel() for p in module.parameters())
    assert 12_000_000 < parameters < 15_000_000
    module.eval()
    xs = [torch.zeros(4, d) for d in dims.values()]
    present = torch.tensor([[True, True, True, True], [False, False, False, True]] * 2)
    with torch.no_grad():
        out = module(xs, present)
    assert out.shape == (4, 256) and torch.isfinite(out).all()
