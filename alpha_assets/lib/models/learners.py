"""The alpha learners (a ridge baseline, XGBoost, LightGBM, CatBoost, an MLP) behind one small interface: fit,
predict, importance, save/load in each framework's native format.

Every learner regresses the (cross-sectionally ranked) label with squared error, is seeded, and is bit-identical
run to run at a fixed thread count. **Fitting rule**: at a fund's signal-to-noise (a daily IC of a few hundredths)
early stopping on a short validation slice stops on noise (on unseen worlds 14 of 32 tree models stopped at
iteration 0 and every MLP after epoch 0). So every learner trains a *fixed, strongly regularised budget* chosen
with the research benchmark (``benchmarks/research.py``) on its tuning seeds: shallow trees, a low learning rate,
many rounds, row and column subsampling, large leaves; an MLP of modest width trained for a fixed number of epochs
with weight decay and a cosine learning-rate schedule. A validation set passed to ``fit`` is not used to stop
(``early_stopping=True`` in ``params`` restores the old rule for comparison). ``ridge`` is the linear baseline
every other model must beat (``alpha_assets.lib.models.ensemble.gated_weights``).

Hyper-parameters come in two budgets: ``seed`` (the fund's values) and ``demo`` (fewer rounds, so a quarter
retrains in seconds on 2 cores), and any ``params`` dict overrides either. The heavy frameworks are imported
inside the methods that use them.

Saved layout: ``directory/meta.json`` (kind, params, seed, feature names, best iteration, MLP scaling and
importances) next to the model file: ``model.json`` (XGBoost; ridge's coefficients), ``model.txt`` (LightGBM),
``model.cbm`` (CatBoost), ``model.pt`` (a torch ``state_dict``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# The one list of model kinds every layer reads (training, scoring, explanations, monitoring, the registry).
MODEL_KINDS = ("ridge", "ic_weighted", "xgboost", "lightgbm", "catboost", "mlp")
LINEAR_KINDS = ("ridge", "ic_weighted")  # a fitted linear score (_Linear), saved as coefficients
EARLY_STOPPING_ROUNDS = 50  # only with params["early_stopping"]: rounds without validation improvement

DEFAULT_PARAMS: dict[str, dict] = {
    # penalty per training row on standardised inputs (lambda = alpha x rows): scale-free in the sample size.
    # 100 from the research benchmark's tuning worlds (0.05: seeds 1, 3, 5-8): ridge's share of the oracle from 10
    # to 100: -0.27 -> -0.18, 0.50 -> 0.63, -1.75 -> -1.80, 0.68 -> 0.69, 0.35 -> 0.33, 0.80 -> 0.88 (mean +0.04, a
    # weak preference); above 100 the ranks no longer change (ridge tends to the covariance-weighted composite);
    # 0.01..0.1 overfit ~130 correlated features.
    "ridge": {"alpha": 100.0},
    # the screened IC-weighted composite: a feature enters with weight = the t-statistic of its daily IC with the
    # target over the training window when |t| >= min_t (standardised inputs); below every screen, all features.
    # min_t 2 from the research benchmark's tuning worlds (seeds 1-4).
    "ic_weighted": {"min_t": 2.0},
    "xgboost": {
        "n_estimators": 600,
        "max_depth": 3,
        "learning_rate": 0.02,
        "subsample": 0.7,
        "colsample_bytree": 0.5,
        "min_child_weight": 300.0,  # squared error: the hessian is the row count
        "reg_lambda": 10.0,
    },
    "lightgbm": {
        "num_leaves": 7,
        "max_depth": 3,
        "learning_rate": 0.02,
        "n_estimators": 600,
        "feature_fraction": 0.5,
        "bagging_fraction": 0.7,
        "bagging_freq": 1,
        "min_child_samples": 300,
        "lambda_l2": 10.0,
    },
    "catboost": {"iterations": 600, "depth": 3, "learning_rate": 0.03, "l2_leaf_reg": 10.0, "subsample": 0.7},
    "mlp": {
        "hidden": (64, 32),
        "dropout": 0.2,
        "learning_rate": 1e-3,
        "weight_decay": 1e-3,
        "batch_size": 1024,
        "max_epochs": 8,
        "patience": 3,  # only with early_stopping
    },
}

# The demo budget: the same models, fewer and larger steps, so a quarter retrains in seconds on 2 cores (each
# learner is fitted twice per block: the validation fit and the refit on the whole window).
DEMO_OVERRIDES: dict[str, dict] = {
    "ridge": {},
    "ic_weighted": {},
    "xgboost": {"n_estimators": 200, "learning_rate": 0.05},
    "lightgbm": {"n_estimators": 200, "learning_rate": 0.05},
    "catboost": {"iterations": 200, "learning_rate": 0.08},
    "mlp": {"max_epochs": 4},
}

BUDGETS = ("seed", "demo")
MLP_IMPORTANCE_ROWS = 2000
MLP_PREDICT_ROWS = 512  # rows per MLP inference call, padded: one shape for every call (deterministic rows)


def params_for(kind: str, budget: str = "seed", params: dict | None = None) -> dict:
    """The hyper-parameters of ``kind`` at a budget, with ``params`` overriding."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {MODEL_KINDS}")
    if budget not in BUDGETS:
        raise ValueError(f"unknown budget {budget!r}; expected one of {BUDGETS}")
    out = dict(DEFAULT_PARAMS[kind])
    if budget == "demo":
        out.update(DEMO_OVERRIDES[kind])
    out.update(params or {})
    return out


def _f32(a) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


@contextlib.contextmanager
def _torch_threads(n: int):
    """torch with ``n`` threads and deterministic algorithms, restoring the caller's global settings after."""
    import torch

    before, was_deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(n)
    torch.use_deterministic_algorithms(True)  # CPU kernels used here have deterministic versions: no cost
    try:
        yield torch
    finally:
        torch.set_num_threads(before)
        torch.use_deterministic_algorithms(was_deterministic)


def _mlp_net(n_in: int, hidden: tuple[int, ...], dropout: float):
    from torch import nn

    layers: list = []
    width = n_in
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
        width = h
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


class _Linear:
    """A fitted linear score: X @ coef + intercept (float64)."""

    def __init__(self, coef: np.ndarray, intercept: float):
        self.coef, self.intercept = np.asarray(coef, dtype=np.float64), float(intercept)

    def predict(self, X) -> np.ndarray:
        return np.asarray(X, dtype=np.float64) @ self.coef + self.intercept


class Learner:
    """One trained (or to-be-trained) alpha model."""

    def __init__(
        self,
        kind: str,
        params: dict,
        seed: int = 7,
        threads: int = 2,
        feature_names: list[str] | None = None,
    ):
        if kind not in MODEL_KINDS:
            raise ValueError(f"unknown model kind {kind!r}; expected one of {MODEL_KINDS}")
        self.kind = kind
        self.params = dict(params)
        self.seed = seed
        self.threads = threads
        self.feature_names: list[str] = list(feature_names or [])
        self.best_iteration: int | None = None
        # The fitted model of ``kind``: _Linear, an XGBoost or LightGBM Booster, a CatBoostRegressor or a torch
        # module (their frameworks are imported lazily, so no union of them is spelled out); None before fit/load.
        self.model: Any = None
        self._scale: tuple[np.ndarray, np.ndarray] | None = None  # MLP input mean/std from the fit rows
        self._importance: dict[str, float] | None = None
        self._groups: np.ndarray | None = None  # the fit rows' cross-sections (ic_weighted)

    def __repr__(self) -> str:
        return (
            f"Learner({self.kind}, features={len(self.feature_names)}, best_iteration={self.best_iteration})"
        )

    # ----------------------------------------------------------------------------------------------- fit
    def fit(
        self, X, y, X_val=None, y_val=None, feature_names: list[str] | None = None, groups=None
    ) -> Learner:
        """Fit on (X, y), early-stopping on (X_val, y_val) when given; returns self. ``groups``: each row's
        cross-section (its trade date); only ``ic_weighted`` uses it (daily ICs), the others ignore it."""
        X, y = _f32(X), _f32(y).ravel()
        self._groups = None if groups is None else np.asarray(groups)
        if self._groups is not None and self._groups.shape[0] != X.shape[0]:
            raise ValueError(f"groups {self._groups.shape} and X {X.shape} do not match")
        if X.ndim != 2 or X.shape[0] != y.shape[0]:
            raise ValueError(f"X {X.shape} and y {y.shape} do not match")
        has_val = X_val is not None and y_val is not None and len(y_val) > 0
        if has_val:
            X_val, y_val = _f32(X_val), _f32(y_val).ravel()
        if feature_names is not None:
            self.feature_names = list(feature_names)
        if len(self.feature_names) != X.shape[1]:
            self.feature_names = [f"f{i:03d}" for i in range(X.shape[1])]
        stop = has_val and bool(self.params.get("early_stopping", False))
        getattr(self, f"_fit_{self.kind}")(X, y, X_val if stop else None, y_val if stop else None)
        return self

    def _fit_ridge(self, X, y, X_val, y_val):
        """Closed-form ridge on standardised inputs, penalty ``alpha`` per training row; coefficients mapped back
        to the raw inputs (float64)."""
        Xd = X.astype(np.float64)
        mean, std = Xd.mean(axis=0), Xd.std(axis=0)
        std[std < 1e-8] = 1.0
        Z = (Xd - mean) / std
        yc = y.astype(np.float64) - float(y.mean())
        lam = float(self.params["alpha"]) * len(y)
        beta = np.linalg.solve(Z.T @ Z + lam * np.eye(Z.shape[1]), Z.T @ yc)
        coef = beta / std
        self.model = _Linear(coef, float(y.mean()) - float(mean @ coef))
        self._importance = dict(zip(self.feature_names, np.abs(beta).tolist(), strict=True))
        self.best_iteration = 0

    def _fit_ic_weighted(self, X, y, X_val, y_val):
        """The screened IC-weighted composite (a Fama-MacBeth score): per cross-section (``groups``), each
        standardised feature's Pearson correlation with the target; over the window, the t-statistic of those
        daily correlations. Coefficient = t where |t| >= ``min_t``, else 0 (on standardised inputs), so a
        feature enters only when its daily IC is consistently signed, and with the weight its evidence earns.
        Without groups the rows form one sample and t = r * sqrt(n) (the same scale when rows are independent).
        If no feature passes the screen, every feature keeps its t (an unscreened composite).

        At a fund's signal-to-noise this ignores the features' correlations on purpose: a ridge over ~130
        correlated, mostly useless features spends its degrees of freedom on noise (on the tuning worlds it
        flipped sign where this held its IC)."""
        Xd = X.astype(np.float64)
        mean, std = Xd.mean(axis=0), Xd.std(axis=0)
        std[std < 1e-8] = 1.0
        Z = (Xd - mean) / std
        yd = y.astype(np.float64)
        if self._groups is None:
            zc, yc = Z - Z.mean(axis=0), yd - yd.mean()
            den = np.sqrt((zc**2).sum(axis=0) * (yc**2).sum())
            r = np.divide((zc * yc[:, None]).sum(axis=0), den, out=np.zeros(Z.shape[1]), where=den > 0)
            t = r * np.sqrt(len(yd))
        else:
            order = np.argsort(self._groups, kind="stable")
            g = self._groups[order]
            starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
            bounds = np.r_[starts, len(g)]
            daily = []
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
                if hi - lo < 5:  # a cross-section this small says nothing
                    continue
                zz, yy = Z[order[lo:hi]], yd[order[lo:hi]]
                zc, yc = zz - zz.mean(axis=0), yy - yy.mean()
                den = np.sqrt((zc**2).sum(axis=0) * (yc**2).sum())
                daily.append(
                    np.divide((zc * yc[:, None]).sum(axis=0), den, out=np.zeros(Z.shape[1]), where=den > 0)
                )
            ics = np.asarray(daily) if daily else np.zeros((0, Z.shape[1]))
            if ics.shape[0] >= 3:
                sd = ics.std(axis=0, ddof=1)
                t = np.divide(
                    ics.mean(axis=0) * np.sqrt(ics.shape[0]), sd, out=np.zeros(Z.shape[1]), where=sd > 0
                )
            else:
                t = np.zeros(Z.shape[1])
        keep = np.abs(t) >= float(self.params["min_t"])
        beta = np.where(keep, t, 0.0) if keep.any() else t
        coef = beta / std
        self.model = _Linear(coef, -float(mean @ coef))
        self._importance = dict(zip(self.feature_names, np.abs(beta).tolist(), strict=True))
        self.best_iteration = 0

    def _fit_xgboost(self, X, y, X_val, y_val):
        import xgboost as xgb

        p = self.params
        booster_params = {
            "objective": "reg:squarederror",
            "tree_method": "hist",
            "max_depth": p["max_depth"],
            "eta": p["learning_rate"],
            "subsample": p["subsample"],
            "colsample_bytree": p["colsample_bytree"],
            "min_child_weight": p.get("min_child_weight", 1.0),
            "lambda": p.get("reg_lambda", 1.0),
            "seed": self.seed,
            "nthread": self.threads,
            "verbosity": 0,
        }
        booster_params.update(p.get("extra", {}))
        dtrain = xgb.DMatrix(X, label=y, nthread=self.threads)
        evals = (
            [(xgb.DMatrix(X_val, label=y_val, nthread=self.threads), "validation")]
            if X_val is not None
            else []
        )
        self.model = xgb.train(
            booster_params,
            dtrain,
            num_boost_round=p["n_estimators"],
            evals=evals,
            early_stopping_rounds=EARLY_STOPPING_ROUNDS if evals else None,
            verbose_eval=False,
        )
        self.best_iteration = int(self.model.best_iteration) if evals else p["n_estimators"] - 1

    def _fit_lightgbm(self, X, y, X_val, y_val):
        import lightgbm as lgb

        p = self.params
        lgb_params = {
            "objective": "regression",
            "num_leaves": p["num_leaves"],
            "learning_rate": p["learning_rate"],
            "feature_fraction": p["feature_fraction"],
            "bagging_fraction": p["bagging_fraction"],
            "bagging_freq": p["bagging_freq"],
            "max_depth": p.get("max_depth", -1),
            "min_child_samples": p.get("min_child_samples", 20),
            "lambda_l2": p.get("lambda_l2", 0.0),
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": self.threads,
            "verbose": -1,
        }
        lgb_params.update(p.get("extra", {}))
        train = lgb.Dataset(X, label=y, free_raw_data=True)
        valid = [lgb.Dataset(X_val, label=y_val, reference=train)] if X_val is not None else []
        callbacks: list[Callable[..., Any]] = (
            [lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)] if valid else []
        )
        self.model = lgb.train(
            lgb_params, train, num_boost_round=p["n_estimators"], valid_sets=valid, callbacks=callbacks
        )
        # lightgbm counts iterations from 1; store the 0-based index like the others
        best = (
            self.model.best_iteration if valid and self.model.best_iteration > 0 else self.model.num_trees()
        )
        self.best_iteration = int(best) - 1

    def _fit_catboost(self, X, y, X_val, y_val):
        from catboost import CatBoostRegressor

        p = self.params
        cb_params = {
            "iterations": p["iterations"],
            "depth": p["depth"],
            "learning_rate": p["learning_rate"],
            "loss_function": "RMSE",
            "l2_leaf_reg": p.get("l2_leaf_reg", 3.0),
            "random_seed": self.seed,
            "thread_count": self.threads,
            "verbose": False,
            "allow_writing_files": False,
        }
        if "subsample" in p:
            cb_params.update(bootstrap_type="Bernoulli", subsample=p["subsample"])
        if X_val is not None:
            cb_params.update(use_best_model=True, od_type="Iter", od_wait=EARLY_STOPPING_ROUNDS)
        cb_params.update(p.get("extra", {}))
        self.model = CatBoostRegressor(**cb_params)
        self.model.fit(X, y, eval_set=(X_val, y_val) if X_val is not None else None)
        best = self.model.get_best_iteration()
        self.best_iteration = int(best) if best is not None else self.model.tree_count_ - 1

    def _fit_mlp(self, X, y, X_val, y_val):
        p = self.params
        mean = X.mean(axis=0)
        std = X.std(axis=0)
        std[std < 1e-8] = 1.0
        self._scale = (mean.astype(np.float32), std.astype(np.float32))
        with _torch_threads(self.threads) as torch:
            torch.manual_seed(self.seed)
            net = _mlp_net(X.shape[1], tuple(p["hidden"]), float(p["dropout"]))
            opt = torch.optim.AdamW(
                net.parameters(), lr=float(p["learning_rate"]), weight_decay=float(p.get("weight_decay", 0.0))
            )
            epochs = int(p["max_epochs"])
            n_batches = max(1, int(np.ceil(len(y) / int(p["batch_size"]))))
            # cosine decay over the whole budget: large steps first, small ones to settle
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs * n_batches))
            loss_fn = torch.nn.MSELoss()
            xt, yt = torch.from_numpy(self._scaled(X)), torch.from_numpy(y)
            xv = torch.from_numpy(self._scaled(X_val)) if X_val is not None else None
            yv = torch.from_numpy(y_val) if y_val is not None else None
            order_rng = np.random.default_rng(self.seed)
            best_loss, best_state, best_epoch, waited = np.inf, None, 0, 0
            for epoch in range(epochs):
                net.train()
                for idx in np.array_split(order_rng.permutation(len(y)), n_batches):
                    ib = torch.from_numpy(idx)
                    opt.zero_grad()
                    loss = loss_fn(net(xt[ib]).squeeze(1), yt[ib])
                    loss.backward()
                    opt.step()
                    sched.step()
                if xv is None:
                    best_epoch = epoch
                    continue
                net.eval()
                with torch.no_grad():
                    val_loss = float(loss_fn(net(xv).squeeze(1), yv))
                if val_loss < best_loss - 1e-9:
                    best_loss, best_epoch, waited = val_loss, epoch, 0
                    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                else:
                    waited += 1
                    if waited >= int(p["patience"]):
                        break
            if best_state is not None:
                net.load_state_dict(best_state)
            net.eval()
            self.model = net
            self.best_iteration = int(best_epoch)
            self._importance = self._mlp_saliency(xt[:MLP_IMPORTANCE_ROWS])

    def _scaled(self, X: np.ndarray) -> np.ndarray:
        assert self._scale is not None, "the MLP has no input scaling before it is fitted or loaded"
        mean, std = self._scale
        return ((X - mean) / std).astype(np.float32)

    def _mlp_saliency(self, xt) -> dict[str, float]:
        """Mean |gradient x input| per feature over the given (scaled) rows: which inputs move the score."""
        x = xt.clone().requires_grad_(True)
        self.model(x).sum().backward()
        sal = (x.grad * x).abs().mean(dim=0).detach().numpy().astype(float)
        return dict(zip(self.feature_names, sal.tolist(), strict=True))

    def _best_iteration(self) -> int:
        """The 0-based best validation iteration of a fitted model (fit and load set it with the model)."""
        assert self.best_iteration is not None, "the learner is not fitted"
        return self.best_iteration

    # ------------------------------------------------------------------------------------------- predict
    def predict(self, X) -> np.ndarray:
        """Scores (float64, one per row) at the best validation iteration."""
        if self.model is None:
            raise RuntimeError("the learner is not fitted")
        X = _f32(X)
        if X.shape[1] != len(self.feature_names):
            raise ValueError(f"X has {X.shape[1]} columns, the model was fitted on {len(self.feature_names)}")
        if self.kind == "xgboost":
            import xgboost as xgb

            d = xgb.DMatrix(X, nthread=self.threads)
            out = self.model.predict(d, iteration_range=(0, self._best_iteration() + 1))
        elif self.kind == "lightgbm":
            out = self.model.predict(X, num_iteration=self._best_iteration() + 1, num_threads=self.threads)
        elif self.kind == "catboost":
            out = self.model.predict(X, thread_count=self.threads)
        elif self.kind in LINEAR_KINDS:
            out = self.model.predict(X)
        else:
            out = self._mlp_predict(self._scaled(X))
        return np.asarray(out, dtype=np.float64)

    def _mlp_predict(self, Xs: np.ndarray) -> np.ndarray:
        """The MLP's scores in fixed-shape chunks (``MLP_PREDICT_ROWS`` rows, the last one zero-padded): a row's
        score is then the same bits whichever rows share its call (a one-day run's 30 names and the same names in a
        backfill's rows differed by ~1e-8: matrix kernels pick their blocking by the number of rows)."""
        out = np.empty(len(Xs), dtype=np.float32)
        with _torch_threads(self.threads) as torch, torch.no_grad():
            for start in range(0, len(Xs), MLP_PREDICT_ROWS):
                chunk = Xs[start : start + MLP_PREDICT_ROWS]
                padded = np.zeros((MLP_PREDICT_ROWS, Xs.shape[1]), dtype=np.float32)
                padded[: len(chunk)] = chunk
                out[start : start + len(chunk)] = (
                    self.model(torch.from_numpy(padded)).squeeze(1).numpy()[: len(chunk)]
                )
        return out

    # ---------------------------------------------------------------------------------------- importance
    def feature_importance(self) -> dict[str, float]:
        """Importance per feature name, normalised to sum to 1 (all features present, unused ones 0).

        Trees: total split gain (XGBoost ``total_gain``, LightGBM ``gain``, CatBoost ``PredictionValuesChange``,
        its gain-based default). MLP: mean |gradient x input| over up to 2,000 fit rows, computed at fit time.
        Ridge, ic_weighted: |coefficient| on the standardised input (the score's move per standard deviation of
        the input).
        """
        if self.model is None:
            raise RuntimeError("the learner is not fitted")
        if self.kind == "xgboost":
            raw = self.model.get_score(importance_type="total_gain")
            values = [raw.get(f"f{i}", 0.0) for i in range(len(self.feature_names))]
        elif self.kind == "lightgbm":
            values = self.model.feature_importance(
                importance_type="gain", iteration=self._best_iteration() + 1
            )
        elif self.kind == "catboost":
            values = self.model.get_feature_importance()
        else:  # mlp, ridge, ic_weighted: computed at fit time
            assert self._importance is not None  # set with the model by fit and load
            values = [self._importance.get(f, 0.0) for f in self.feature_names]
        v = np.maximum(np.asarray(values, dtype=float), 0.0)
        total = v.sum()
        v = v / total if total > 0 else v
        return dict(zip(self.feature_names, v.tolist(), strict=True))

    # --------------------------------------------------------------------------------------- persistence
    _FILES = {
        "ridge": "model.json",
        "ic_weighted": "model.json",
        "xgboost": "model.json",
        "lightgbm": "model.txt",
        "catboost": "model.cbm",
        "mlp": "model.pt",
    }

    def save(self, directory: Path) -> Path:
        """Write meta.json + the native model file into ``directory`` (created); returns the directory."""
        if self.model is None:
            raise RuntimeError("the learner is not fitted")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / self._FILES[self.kind]
        meta = {
            "kind": self.kind,
            "params": self.params,
            "seed": self.seed,
            "threads": self.threads,
            "feature_names": self.feature_names,
            "best_iteration": self.best_iteration,
            "model_file": path.name,
        }
        if self.kind in LINEAR_KINDS:
            path.write_text(json.dumps({"coef": self.model.coef.tolist(), "intercept": self.model.intercept}))
            meta["importance"] = self._importance
        elif self.kind == "xgboost":
            self.model.save_model(str(path))
        elif self.kind == "lightgbm":
            self.model.save_model(str(path), num_iteration=self._best_iteration() + 1)
        elif self.kind == "catboost":
            self.model.save_model(str(path), format="cbm")
        else:
            import torch

            torch.save(self.model.state_dict(), path)
            assert self._scale is not None  # set with the MLP by fit and load
            meta["scale_mean"] = self._scale[0].tolist()
            meta["scale_std"] = self._scale[1].tolist()
            meta["importance"] = self._importance
        (directory / "meta.json").write_text(json.dumps(meta, indent=1, default=list))
        return directory

    @classmethod
    def load(cls, directory: Path) -> Learner:
        directory = Path(directory)
        meta = json.loads((directory / "meta.json").read_text())
        params = meta["params"]
        if "hidden" in params:
            params["hidden"] = tuple(params["hidden"])
        self = cls(meta["kind"], params, meta["seed"], meta["threads"], meta["feature_names"])
        self.best_iteration = meta["best_iteration"]
        path = directory / meta["model_file"]
        if self.kind in LINEAR_KINDS:
            lin = json.loads(path.read_text())
            self.model = _Linear(np.asarray(lin["coef"], dtype=np.float64), float(lin["intercept"]))
            self._importance = meta["importance"]
        elif self.kind == "xgboost":
            import xgboost as xgb

            self.model = xgb.Booster()
            self.model.load_model(str(path))
        elif self.kind == "lightgbm":
            import lightgbm as lgb

            self.model = lgb.Booster(model_file=str(path))
        elif self.kind == "catboost":
            from catboost import CatBoostRegressor

            self.model = CatBoostRegressor()
            self.model.load_model(str(path), format="cbm")
        else:
            import torch

            self._scale = (
                np.asarray(meta["scale_mean"], dtype=np.float32),
                np.asarray(meta["scale_std"], dtype=np.float32),
            )
            self._importance = meta["importance"]
            net = _mlp_net(len(self.feature_names), tuple(params["hidden"]), float(params["dropout"]))
            net.load_state_dict(torch.load(path, weights_only=True))
            net.eval()
            self.model = net
        return self


def make_learner(
    kind: str,
    seed: int = 7,
    params: dict | None = None,
    threads: int = 2,
    budget: str = "seed",
    feature_names: list[str] | None = None,
) -> Learner:
    """An unfitted learner of ``kind`` (one of ``MODEL_KINDS``) at a budget ("seed"/"demo"),
    ``params`` overriding individual hyper-parameters (``{"extra": {...}}`` passes framework-native ones)."""
    return Learner(
        kind, params_for(kind, budget, params), seed=seed, threads=threads, feature_names=feature_names
    )
