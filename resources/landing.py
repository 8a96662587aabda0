"""Vendor landing zones: where vendors drop files. A local folder or an S3 prefix, same interface.

Sensors list new files through this resource (never through ``os`` or ``boto3`` directly), assets read file bytes
through it, and bad files are moved to quarantine with a reason file next to them: nothing is deleted.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import stat as stat_mode
from dataclasses import dataclass
from datetime import datetime, timezone
from glob import escape as glob_escape
from pathlib import Path

from dagster import ConfigurableResource


@dataclass(frozen=True)
class LandedFile:
    prefix: str  # vendor prefix, e.g. "prices_a"
    name: str  # path relative to the prefix, e.g. "prices_a_2024-01-02.csv"
    size: int
    modified: float  # POSIX seconds
    fingerprint: str  # content identity: sha256 (local) or ETag (S3)
    outside_zone: bool = False  # a symlink whose target lies outside the landing zone (never read or hashed)
    kind: str = (
        "file"  # with list_files(special=True): "directory", "fifo", "socket" or "device" (never read)
    )

    def stamp(self) -> str:
        return f"{self.size}:{self.modified}:{self.fingerprint}"


class VendorLanding(ConfigurableResource):
    """Interface; see LocalVendorLanding and S3VendorLanding."""

    def list_files(
        self,
        prefix: str,
        known: dict[str, str] | None = None,
        fingerprints: bool = True,
        special: bool = False,
    ) -> list[LandedFile]:
        """``special``: also list what is not a regular file (a directory, a FIFO ...) with its ``kind``, so that
        the intake layer can refuse one named like a delivery with a reason."""
        raise NotImplementedError

    def read_bytes(self, prefix: str, name: str) -> bytes:
        raise NotImplementedError

    def fingerprint(self, prefix: str, name: str) -> str:
        """The content identity ``list_files`` reports for this file (sha256 locally, ETag on S3)."""
        raise NotImplementedError

    def fingerprint_of(self, prefix: str, name: str, data: bytes) -> str:
        """The content identity of ``data``, bytes just read from the file (locally their sha256; on S3, where an
        object is replaced whole, its ETag)."""
        return self.fingerprint(prefix, name)

    def stat(self, prefix: str, name: str) -> tuple[int, float] | None:
        """(size, modified) of the file now, None when it is gone."""
        raise NotImplementedError

    def quarantine(self, prefix: str, name: str, reason: str, details: list[dict] | None = None) -> str:
        """Move the file to quarantine with a ``.reason.json`` (``reason``, and ``failures``: ``details``)."""
        raise NotImplementedError

    def quarantine_record(self, prefix: str, name: str) -> dict | None:
        """The latest ``.reason.json`` written for ``<prefix>/<name>``, None when it was never quarantined."""
        raise NotImplementedError

    def quarantine_bytes(self, prefix: str, name: str, data: bytes, reason: str) -> str:
        """Keep ``data`` (content that never was a landed file, e.g. a scraped page) in quarantine as
        ``<prefix>/<name>`` with a ``.reason.json`` next to it; returns where it went."""
        raise NotImplementedError

    def exists(self, prefix: str, name: str) -> bool:
        raise NotImplementedError

    def local_path(self, prefix: str, name: str) -> Path:
        """A local path to read the file from (S3 downloads it to a cache)."""
        raise NotImplementedError


def content_fingerprint(data: bytes) -> str:
    """A local file's content identity: the first 32 hex digits of its sha256."""
    return hashlib.sha256(data).hexdigest()[:32]


def _safe_rel(name: str) -> str:
    """``name`` as a relative path that cannot climb out of the folder it is joined to."""
    parts = [p if p not in ("", ".", "..") else "_" for p in name.replace("\\", "/").split("/")]
    return "/".join(parts).lstrip("/") or "_"


def _reason_doc(prefix: str, name: str, reason: str, details: list[dict] | None = None) -> str:
    doc: dict[str, object] = {
        "file": f"{prefix}/{name}",
        "reason": reason,
        "quarantined_at": datetime.now(timezone.utc).isoformat(),
    }
    if details:
        doc["failures"] = details[:1000]
    return json.dumps(doc, indent=2, default=str)


def _latest_record(docs: list[str]) -> dict | None:
    records = []
    for text in docs:
        try:
            records.append(json.loads(text))
        except ValueError:
            continue
    return max(records, key=lambda r: str(r.get("quarantined_at", ""))) if records else None


def _kind(mode: int) -> str | None:
    if stat_mode.S_ISREG(mode):
        return None
    if stat_mode.S_ISDIR(mode):
        return "directory"
    if stat_mode.S_ISFIFO(mode):
        return "fifo"
    if stat_mode.S_ISSOCK(mode):
        return "socket"
    return "device"


class LocalVendorLanding(VendorLanding):
    root: str
    quarantine_root: str

    def _dir(self, prefix: str) -> Path:
        return Path(self.root) / prefix

    def list_files(
        self,
        prefix: str,
        known: dict[str, str] | None = None,
        fingerprints: bool = True,
        special: bool = False,
    ) -> list[LandedFile]:
        """Files under the prefix; ``known`` maps name -> stamp() so unchanged files are not re-hashed.
        ``fingerprints=False`` skips hashing (assets only need names and times); ``special`` also lists
        directories, FIFOs, sockets and devices (``kind``), never opened."""
        base = self._dir(prefix)
        if not base.exists():
            return []
        zone = Path(self.root).resolve()
        out = []
        for p in sorted(base.rglob("*")):
            name = p.relative_to(base).as_posix()
            if p.is_symlink() and not p.resolve().is_relative_to(zone):
                # reported, never followed: the intake layer quarantines it
                out.append(LandedFile(prefix, name, 0, p.lstat().st_mtime, "", outside_zone=True))
                continue
            # in-flight uploads (*.tmp) are neither deliveries nor rejects yet; hidden files are listed so that
            # the intake layer can quarantine them with a reason
            if special and not p.is_symlink() and (kind := _kind(p.lstat().st_mode)):
                out.append(LandedFile(prefix, name, 0, p.lstat().st_mtime, "", kind=kind))
                continue
            if not p.is_file() or p.name.endswith(".tmp"):
                continue
            st = p.stat()
            stamp = f"{st.st_size}:{st.st_mtime}"
            prev = (known or {}).get(name, "")
            if not fingerprints:
                sha = ""
            elif prev.startswith(stamp + ":"):
                sha = prev.rsplit(":", 1)[1]
            else:
                sha = content_fingerprint(p.read_bytes())
            out.append(LandedFile(prefix, name, st.st_size, st.st_mtime, sha))
        return out

    def read_bytes(self, prefix: str, name: str) -> bytes:
        return (self._dir(prefix) / name).read_bytes()

    def fingerprint(self, prefix: str, name: str) -> str:
        return content_fingerprint(self.read_bytes(prefix, name))

    def fingerprint_of(self, prefix: str, name: str, data: bytes) -> str:
        return content_fingerprint(data)

    def stat(self, prefix: str, name: str) -> tuple[int, float] | None:
        try:
            st = (self._dir(prefix) / name).stat()
        except OSError:
            return None
        return st.st_size, st.st_mtime

    def quarantine_record(self, prefix: str, name: str) -> dict | None:
        dest = Path(self.quarantine_root) / prefix / _safe_rel(name)
        docs = [
            p.read_text()
            for p in dest.parent.glob(f"{glob_escape(dest.name)}*.reason.json")
            if p.name == f"{dest.name}.reason.json" or p.name.startswith(f"{dest.name}.")
        ]
        record = _latest_record(docs)
        return record if record and record.get("file") == f"{prefix}/{name}" else None

    def exists(self, prefix: str, name: str) -> bool:
        return (self._dir(prefix) / name).is_file()

    def local_path(self, prefix: str, name: str) -> Path:
        return self._dir(prefix) / name

    def _quarantine_dest(self, prefix: str, name: str) -> Path:
        dest = Path(self.quarantine_root) / prefix / _safe_rel(name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():  # a second bad delivery of the same name: keep both
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
            dest = dest.with_name(f"{dest.name}.{stamp}")
        return dest

    def quarantine(self, prefix: str, name: str, reason: str, details: list[dict] | None = None) -> str:
        dest = self._quarantine_dest(prefix, name)
        shutil.move(str(self._dir(prefix) / name), str(dest))
        Path(str(dest) + ".reason.json").write_text(_reason_doc(prefix, name, reason, details))
        return str(dest)

    def quarantine_bytes(self, prefix: str, name: str, data: bytes, reason: str) -> str:
        dest = self._quarantine_dest(prefix, name)
        dest.write_bytes(data)
        Path(str(dest) + ".reason.json").write_text(_reason_doc(prefix, name, reason))
        return str(dest)


class S3VendorLanding(VendorLanding):
    """Landing zone on S3 (or an S3-compatible server): ``s3://bucket/<root_prefix>/<vendor prefix>/<name>``."""

    bucket: str
    root_prefix: str = "landing"
    quarantine_prefix: str = "quarantine"
    endpoint_url: str | None = None
    region_name: str = "us-east-1"
    cache_dir: str = "/tmp/alpha-landing-cache"

    def _client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=self.region_name)

    def _key(self, prefix: str, name: str) -> str:
        return f"{self.root_prefix.strip('/')}/{prefix}/{name}"

    def list_files(
        self,
        prefix: str,
        known: dict[str, str] | None = None,
        fingerprints: bool = True,
        special: bool = False,
    ) -> list[LandedFile]:
        base = f"{self.root_prefix.strip('/')}/{prefix}/"
        out = []
        # Paginated: a plain list_objects_v2 returns only the first 1,000 keys.
        for page in self._client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base):
            for obj in page.get("Contents", []):
                name = obj["Key"][len(base) :]
                if not name or name.endswith("/"):
                    continue
                out.append(
                    LandedFile(
                        prefix, name, obj["Size"], obj["LastModified"].timestamp(), obj["ETag"].strip('"')
                    )
                )
        return sorted(out, key=lambda f: f.name)

    def read_bytes(self, prefix: str, name: str) -> bytes:
        return self._client().get_object(Bucket=self.bucket, Key=self._key(prefix, name))["Body"].read()

    def fingerprint(self, prefix: str, name: str) -> str:
        head = self._client().head_object(Bucket=self.bucket, Key=self._key(prefix, name))
        return head["ETag"].strip('"')

    def exists(self, prefix: str, name: str) -> bool:
        try:
            self._client().head_object(Bucket=self.bucket, Key=self._key(prefix, name))
            return True
        except Exception:
            return False

    def stat(self, prefix: str, name: str) -> tuple[int, float] | None:
        try:
            head = self._client().head_object(Bucket=self.bucket, Key=self._key(prefix, name))
        except Exception:
            return None
        return int(head["ContentLength"]), head["LastModified"].timestamp()

    def quarantine_record(self, prefix: str, name: str) -> dict | None:
        s3 = self._client()
        base = f"{self.quarantine_prefix.strip('/')}/{prefix}/{_safe_rel(name)}"
        docs = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base):
            for obj in page.get("Contents", []):
                if obj["Key"].endswith(".reason.json"):
                    docs.append(s3.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"].read().decode())
        record = _latest_record(docs)
        return record if record and record.get("file") == f"{prefix}/{name}" else None

    def local_path(self, prefix: str, name: str) -> Path:
        dest = Path(self.cache_dir) / prefix / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(self.read_bytes(prefix, name))
        return dest

    def quarantine(self, prefix: str, name: str, reason: str, details: list[dict] | None = None) -> str:
        s3 = self._client()
        src = self._key(prefix, name)
        dest = f"{self.quarantine_prefix.strip('/')}/{prefix}/{_safe_rel(name)}"
        s3.copy_object(Bucket=self.bucket, Key=dest, CopySource={"Bucket": self.bucket, "Key": src})
        s3.put_object(
            Bucket=self.bucket,
            Key=dest + ".reason.json",
            Body=_reason_doc(prefix, name, reason, details).encode(),
        )
        s3.delete_object(Bucket=self.bucket, Key=src)
        return f"s3://{self.bucket}/{dest}"

    def quarantine_bytes(self, prefix: str, name: str, data: bytes, reason: str) -> str:
        s3 = self._client()
        dest = f"{self.quarantine_prefix.strip('/')}/{prefix}/{_safe_rel(name)}"
        s3.put_object(Bucket=self.bucket, Key=dest, Body=data)
        s3.put_object(
            Bucket=self.bucket, Key=dest + ".reason.json", Body=_reason_doc(prefix, name, reason).encode()
        )
        return f"s3://{self.bucket}/{dest}"
