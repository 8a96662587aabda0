"""Resources for the alternative-data sources: the sentiment model, the vendor web site, and the
demo world's ground truth (used only to report measurement error, never as an input)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dagster import ConfigurableResource
from pydantic import PrivateAttr


class SentimentResource(ConfigurableResource):
    """The sentence-sentiment model for calls and filings.

    ``model_dir`` is any local Hugging Face sequence-classification directory (a FinBERT copy works unchanged);
    empty means the offline default (all-MiniLM-L6-v2 from its pip package + a head trained on the shipped
    labelled sentences, cached in ``cache_dir`` after the first use); ``encoder_dir`` replaces that encoder by
    another local all-MiniLM-L6-v2 directory."""

    model_dir: str = ""
    cache_dir: str = ""
    encoder_dir: str = ""
    num_threads: int = 2

    _model: Any = PrivateAttr(default=None)

    def model(self):
        if self._model is None:
            from alpha_assets.lib.altdata.nlp import SentimentModel

            kwargs: dict[str, Any] = {"num_threads": self.num_threads}
            if self.model_dir:
                self._model = SentimentModel.from_directory(self.model_dir, **kwargs)
            else:
                if self.cache_dir:
                    kwargs["cache_dir"] = self.cache_dir
                if self.encoder_dir:
                    kwargs["encoder_dir"] = self.encoder_dir
                self._model = SentimentModel.default(**kwargs)
        return self._model


class WebVendorResource(ConfigurableResource):
    """The vendor web site the crawler visits, and the crawler's manners.

    ``base_url`` empty means no site is configured: ``raw.web_signals`` then writes nothing and says so.
    ``raw_dir`` keeps every fetched page (content-addressed) plus a fetch log, so a day can be re-parsed
    without re-crawling."""

    base_url: str = ""
    raw_dir: str
    requests_per_second: float = 5.0
    max_concurrency: int = 2
    max_retries: int = 3
    timeout_s: float = 10.0
    user_agent: str = "alpha-assets-crawler/0.1 (+https://github.com/alpha-assets; data@fund.example)"


class GroundTruthResource(ConfigurableResource):
    """The demo world's truth folder. Assets read it only to report their measurement error as metadata; no value
    computed from it flows downstream. Empty ``root`` (production) turns the error reports off."""

    root: str = ""

    def path(self, name: str) -> Path | None:
        if not self.root:
            return None
        p = Path(self.root) / name
        return p if p.exists() else None
