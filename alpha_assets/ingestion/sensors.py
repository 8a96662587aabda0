"""One sensor per vendor landing prefix.

Each tick lists the prefix through the VendorLanding resource (local folder or paginated S3), compares it with the
cursor (file name -> size:mtime:content fingerprint), and asks for one run per trading date with a new or changed
delivery. A delivery whose content is what its partition was last materialized from launches nothing, however
that partition was materialized (demo, CLI, UI backfill, sensor): the vendor assets record ``source_fingerprints``
("<prefix>/<name>" -> fingerprint) in their materialization metadata, and the sensor reads it from the instance.
The run key is the file's content fingerprint, so a re-delivered identical file launches nothing and a corrected
file re-runs its day (a file whose content replaced other content also keys on its mtime, so content read, replaced
and delivered again is read again). The vendor assets record the fingerprint of the bytes they parsed and skip a
file still being written, so a file completed after a run looked at it is new content here and re-runs its day. A
directory or FIFO named like a delivery is quarantined with a reason. Which names are deliveries is the intake layer's one rule (``classify``); everything else,
and deliveries dated in the future or on a non-session, is quarantined with a reason.
"""

import json
from collections.abc import Callable, Iterable
from datetime import date, datetime, timezone

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    AssetSelection,
    DagsterInstance,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from alpha_assets.intake import SOURCE_FINGERPRINTS, not_a_file
from alpha_assets.keys import (
    RAW_CALL_SENTIMENT,
    RAW_FILING_FEATURES,
    RAW_OIL_TANK_LEVELS,
    RAW_OIL_TANKS,
    RAW_PARKING_LOT_COUNTS,
    RAW_PARKING_LOT_IMAGES,
    RAW_PRICE_RECONCILIATION,
    RAW_PRICES,
    RAW_UNIVERSE,
)
from alpha_assets.lib.ingestion.deliveries import Delivery, Rejection, classify, is_in_flight
from partitions import trading_days
from resources.landing import LandedFile, VendorLanding

# partition keys -> {"<prefix>/<name>": fingerprint} the partition was last materialized from
MaterializedSources = Callable[[list[str]], dict[str, dict[str, str]]]


def materialized_sources(
    instance: DagsterInstance, asset_keys: Iterable[AssetKey], partition_keys: list[str]
) -> dict[str, dict[str, str]]:
    """For each partition key, the source fingerprints its latest materialization of each asset recorded.

    A file counts for a partition when the latest materialization of every target that names it agrees on its
    fingerprint; a name two targets disagree on is left out (the day is re-run)."""
    out: dict[str, dict[str, str]] = {}
    conflicts: dict[str, set[str]] = {}
    if not partition_keys:
        return out
    for key in asset_keys:
        latest: dict[str, dict[str, str]] = {}
        cursor = None
        while True:  # newest first: the first event seen for a partition is its latest
            page = instance.fetch_materializations(
                AssetRecordsFilter(asset_key=key, asset_partitions=partition_keys), limit=1000, cursor=cursor
            )
            for record in page.records:
                pk = record.partition_key
                if pk is None or pk in latest:
                    continue
                mat = record.asset_materialization
                entry = mat.metadata.get(SOURCE_FINGERPRINTS) if mat else None
                value = getattr(entry, "value", entry)
                latest[pk] = dict(value) if isinstance(value, dict) else {}
            if not page.has_more:
                break
            cursor = page.cursor
        for pk, fingerprints in latest.items():
            merged = out.setdefault(pk, {})
            for name, fp in fingerprints.items():
                if name in merged and merged[name] != fp:
                    conflicts.setdefault(pk, set()).add(name)
                merged.setdefault(name, fp)
    for pk, names in conflicts.items():
        for name in names:
            out[pk].pop(name, None)
    return out


PRICE_KEYS = [RAW_PRICES, RAW_PRICE_RECONCILIATION]  # one multi-asset
VENDOR_TARGETS: dict[str, list[AssetKey]] = {
    "reference": [RAW_UNIVERSE],
    "prices_a": PRICE_KEYS,
    "prices_b": PRICE_KEYS,
    # alternative data: images land in <prefix>/<date>/<id>.png + .json, documents as <TICKER>_..._<date>.txt
    "parking": [RAW_PARKING_LOT_IMAGES, RAW_PARKING_LOT_COUNTS],
    "tanks": [RAW_OIL_TANKS, RAW_OIL_TANK_LEVELS],
    "transcripts": [RAW_CALL_SENTIMENT],
    "filings": [RAW_FILING_FEATURES],
}


def evaluate_landing(
    prefix: str,
    landing: VendorLanding,
    cursor: str | None,
    targets: list[AssetKey],
    today: date | None = None,
    materialized: MaterializedSources | None = None,
) -> tuple[list[RunRequest], str, list[str]]:
    """Pure sensor logic: (run requests, new cursor, quarantined files).

    ``materialized`` answers, for partition keys, which file contents each was last materialized from; a
    delivery listed there with the same fingerprint is already in the lake and launches nothing."""
    known: dict[str, str] = json.loads(cursor) if cursor else {}
    today = today or datetime.now(timezone.utc).date()
    files = landing.list_files(prefix, known=known, special=True)
    changed: dict[str, list[LandedFile]] = {}
    replaced: set[str] = set()  # names whose content changed since the cursor saw them
    quarantined: list[str] = []
    new_known: dict[str, str] = {}
    refused = [(f, r) for f in files if f.kind != "file" and (r := not_a_file(prefix, f.name, f.kind))]
    gone = tuple(f"{f.name}/" for f, _ in refused)  # what a refused directory holds moves with it
    for f, r in refused:
        quarantined.append(landing.quarantine(prefix, f.name, r.reason))
    for f in files:
        if f.kind != "file" or f.name.startswith(gone) or is_in_flight(f.name):
            continue  # a folder, something refused above, or still uploading: looked at again next tick
        stamp = f.stamp()
        new_known[f.name] = stamp
        prev = known.get(f.name)
        if prev is not None and prev.rsplit(":", 1)[-1] == f.fingerprint:
            continue  # same content as already seen (maybe re-delivered): nothing to do
        if prev is not None:
            replaced.add(f.name)
        verdict = classify(prefix, f.name, outside_zone=f.outside_zone)
        if verdict is None:
            continue  # a delivery's companion (an image's sidecar): it travels with its delivery
        reason = verdict.reason if isinstance(verdict, Rejection) else None
        if isinstance(verdict, Delivery):
            d = verdict.trade_date
            if d > today:
                reason = f"file is dated {d}, in the future (today is {today})"
            elif not trading_days.has_partition_key(d.isoformat()):
                reason = f"{d} is not a trading session (weekend or exchange holiday) or is before the partitions start"
        if reason:
            quarantined.append(landing.quarantine(prefix, f.name, reason))
            new_known.pop(f.name, None)
            continue
        changed.setdefault(verdict.trade_date.isoformat(), []).append(f)
    recorded = materialized(sorted(changed)) if (materialized and changed) else {}
    requests: list[RunRequest] = []
    for key, day_files in sorted(changed.items()):
        sources = recorded.get(key, {})
        new = [f for f in day_files if sources.get(f"{prefix}/{f.name}") != f.fingerprint]
        if not new:
            continue  # the partition was built from exactly these contents
        # One request per (date, content): several files of one date in a tick share the newest content's key.
        # A file that replaced other content (a correction, or a file completed after a partial read) also keys on
        # its mtime: content delivered, replaced and delivered again is read again, not deduplicated by Dagster.
        f = max(new, key=lambda x: (x.modified, x.name))
        again = f":{f.modified}" if f.name in replaced else ""
        requests.append(
            RunRequest(
                run_key=f"{prefix}/{key}@{f.fingerprint}{again}",
                partition_key=key,
                asset_selection=targets,
                tags={"alpha/vendor_file": f"{prefix}/{f.name}", "alpha/fingerprint": f.fingerprint},
            )
        )
    return requests, json.dumps(new_known, sort_keys=True), quarantined


def make_vendor_sensor(prefix: str, targets: list[AssetKey]):
    @sensor(
        name=f"{prefix}_landing_sensor",
        target=AssetSelection.assets(*targets),
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"Runs the day of each new or corrected file in landing/{prefix}/",
    )
    def _sensor(context: SensorEvaluationContext, landing: VendorLanding):
        requests, cursor, quarantined = evaluate_landing(
            prefix,
            landing,
            context.cursor,
            targets,
            materialized=lambda keys: materialized_sources(context.instance, targets, keys),
        )
        for q in quarantined:
            context.log.warning(f"quarantined {q}")
        if not requests:
            return SensorResult(skip_reason=SkipReason(f"no new files in {prefix}/"), cursor=cursor)
        return SensorResult(run_requests=requests, cursor=cursor)

    return _sensor


vendor_sensors = [make_vendor_sensor(p, t) for p, t in VENDOR_TARGETS.items()]
