"""One sensor per vendor landing prefix.

Each tick lists the prefix through the VendorLanding resource (local folder or paginated S3), compares it with the
cursor (file name -> size:mtime:content fingerprint), and asks for one run per new or changed file, for the
file's trading date. The run key is the file's content fingerprint: a re-delivered identical file launches
nothing, a corrected file re-runs its day. Files whose name carries no trading date, or a date in the future, are
quarantined with a reason.
"""

import json
from datetime import date, datetime, timezone

from dagster import (
    AssetKey,
    AssetSelection,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from alpha_assets.lib.ingestion.vendor_files import date_from_name
from partitions import trading_days
from resources.landing import VendorLanding

PRICE_KEYS = [AssetKey(["raw", "prices"]), AssetKey(["raw", "price_reconciliation"])]  # one multi-asset
VENDOR_TARGETS: dict[str, list[AssetKey]] = {
    "reference": [AssetKey(["raw", "universe"])],
    "prices_a": PRICE_KEYS,
    "prices_b": PRICE_KEYS,
    # alternative data: images land in <prefix>/<date>/<id>.png + .json, documents as <TICKER>_..._<date>.txt
    "parking": [AssetKey(["raw", "parking_lot_images"]), AssetKey(["raw", "parking_lot_counts"])],
    "tanks": [AssetKey(["raw", "oil_tanks"]), AssetKey(["raw", "oil_tank_levels"])],
    "transcripts": [AssetKey(["raw", "call_sentiment"])],
    "filings": [AssetKey(["raw", "filing_features"])],
}


def evaluate_landing(
    prefix: str,
    landing: VendorLanding,
    cursor: str | None,
    targets: list[AssetKey],
    today: date | None = None,
) -> tuple[list[RunRequest], str, list[str]]:
    """Pure sensor logic: (run requests, new cursor, quarantined files)."""
    known: dict[str, str] = json.loads(cursor) if cursor else {}
    today = today or datetime.now(timezone.utc).date()
    files = landing.list_files(prefix, known=known)
    requests: dict[str, RunRequest] = {}
    quarantined: list[str] = []
    new_known: dict[str, str] = {}
    for f in files:
        stamp = f.stamp()
        new_known[f.name] = stamp
        prev = known.get(f.name)
        if prev is not None and prev.rsplit(":", 1)[-1] == f.fingerprint:
            continue  # same content as already seen (maybe re-delivered): nothing to do
        d = date_from_name(f.name)
        reason = None
        if d is None:
            reason = "file name carries no YYYY-MM-DD trading date"
        elif d > today:
            reason = f"file is dated {d}, in the future (today is {today})"
        elif not trading_days.has_partition_key(d.isoformat()):
            reason = f"{d} is not a trading session (weekend or exchange holiday) or is before the partitions start"
        if reason:
            quarantined.append(landing.quarantine(prefix, f.name, reason))
            new_known.pop(f.name, None)
            continue
        key = d.isoformat()
        # One request per (date, content): several files of one date in a tick share the newest content's key.
        requests[key] = RunRequest(
            run_key=f"{prefix}/{key}@{f.fingerprint}",
            partition_key=key,
            asset_selection=targets,
            tags={"alpha/vendor_file": f"{prefix}/{f.name}", "alpha/fingerprint": f.fingerprint},
        )
    return list(requests.values()), json.dumps(new_known, sort_keys=True), quarantined


def make_vendor_sensor(prefix: str, targets: list[AssetKey]):
    @sensor(
        name=f"{prefix}_landing_sensor",
        target=AssetSelection.assets(*targets),
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"Runs the day of each new or corrected file in landing/{prefix}/",
    )
    def _sensor(context: SensorEvaluationContext, landing: VendorLanding):
        requests, cursor, quarantined = evaluate_landing(prefix, landing, context.cursor, targets)
        for q in quarantined:
            context.log.warning(f"quarantined {q}")
        if not requests:
            return SensorResult(skip_reason=SkipReason(f"no new files in {prefix}/"), cursor=cursor)
        return SensorResult(run_requests=requests, cursor=cursor)

    return _sensor


vendor_sensors = [make_vendor_sensor(p, t) for p, t in VENDOR_TARGETS.items()]
