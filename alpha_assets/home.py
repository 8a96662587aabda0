"""ALPHA_HOME: the one folder everything the platform writes lives under (local deployment).

Nothing here runs at import: `AlphaHome.from_env()` reads ALPHA_HOME when the definitions load or a command
starts, and `ensure()` is called by the `alpha` commands and `make ui`; the code location never creates folders
(each resource makes its own at first write).

landing/     vendor drop zone          quarantine/  bad vendor files + reason files
lake/        Delta tables at lake/<layer>/<asset>
dagster/     DAGSTER_HOME              mlflow/      tracking database + artifacts
models/      trained model files (car detector, sentiment head)   vendor_site/  the demo world's web site
web_raw/     every page the crawler fetched (replayable)
ground_truth/  the demo world's truth (written by the simulator; assets read it only to report their
               measurement error as metadata, never as an input)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = ".alpha"


@dataclass(frozen=True)
class AlphaHome:
    root: Path

    @classmethod
    def from_env(cls) -> AlphaHome:
        return cls(Path(os.environ.get("ALPHA_HOME", DEFAULT_HOME)).expanduser().resolve())

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def dagster(self) -> Path:
        return self.root / "dagster"

    @property
    def mlflow(self) -> Path:
        return self.root / "mlflow"

    @property
    def ground_truth(self) -> Path:
        return self.root / "ground_truth"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def vendor_site(self) -> Path:
        return self.root / "vendor_site"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    def unusable(self) -> str | None:
        """Why this folder cannot be an alpha home, in one line (None when it can): checked by every `alpha` command
        before anything runs. A path with a space (or #, é, ...) works; one the Delta Lake library cannot store
        tables under does not; a home that is a file, or under one, is not a folder."""
        from resources.lake import unsupported_path

        why = unsupported_path(self.root)
        if why:
            return why
        for p in (self.root, *self.root.parents):
            if p.exists():
                return None if p.is_dir() else f"{p} is a file, not a folder"
        return None

    def check_writable(self) -> None:
        """Raise PermissionError (one line) unless a file can be created and removed in the home."""
        import tempfile

        try:
            with tempfile.TemporaryFile(dir=self.root, prefix=".alpha-write-check-"):
                pass
        except OSError as e:
            raise PermissionError(f"{self.root} is not writable ({e.strerror or e})") from None

    def ensure(self) -> AlphaHome:
        for p in (
            self.landing,
            self.quarantine,
            self.lake,
            self.dagster,
            self.mlflow,
            self.outbox,
            self.models,
        ):
            p.mkdir(parents=True, exist_ok=True)
        return self
