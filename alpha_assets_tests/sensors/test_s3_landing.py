"""The S3 landing zone against an S3-compatible server on loopback (moto_server), with pagination."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from datetime import date

import pytest
from dagster import AssetKey

from alpha_assets.ingestion.sensors import evaluate_landing
from resources.landing import S3VendorLanding

pytestmark = pytest.mark.service


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    exe = shutil.which("moto_server", path=os.path.dirname(sys.executable))
    if exe is None:
        pytest.skip("moto_server not installed")
    port = _free_port()
    proc = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    old = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
    yield url
    proc.terminate()
    proc.wait(timeout=10)
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_s3_sensor_lists_past_1000_keys_and_dedupes_by_etag(s3_endpoint):
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="vendor")
    from partitions.calendar import sessions_from

    days = sessions_from(date(2016, 1, 4), 1050)  # more than one page of keys
    for i, d in enumerate(days):
        s3.put_object(Bucket="vendor", Key=f"landing/prices_a/prices_a_{d}.csv", Body=f"day {i}".encode())
    landing = S3VendorLanding(bucket="vendor", endpoint_url=s3_endpoint)
    target = [AssetKey(["raw", "prices"])]
    reqs, cursor, q = evaluate_landing("prices_a", landing, None, target, date(2024, 1, 1))
    assert len(reqs) == 1050 and not q
    # Re-delivery of identical bytes: same ETag, nothing to run. A corrected file: one run for its day.
    s3.put_object(Bucket="vendor", Key=f"landing/prices_a/prices_a_{days[3]}.csv", Body=b"day 3")
    s3.put_object(Bucket="vendor", Key=f"landing/prices_a/prices_a_{days[7]}.csv", Body=b"day 7 corrected")
    reqs2, _, _ = evaluate_landing("prices_a", landing, cursor, target, date(2024, 1, 1))
    assert [r.partition_key for r in reqs2] == [days[7].isoformat()]
    # Odd names are quarantined under the quarantine prefix with a reason object.
    s3.put_object(Bucket="vendor", Key="landing/prices_a/README.txt", Body=b"hello")
    _, _, q3 = evaluate_landing("prices_a", landing, cursor, target, date(2024, 1, 1))
    assert q3 == ["s3://vendor/quarantine/prices_a/README.txt"]
    body = s3.get_object(Bucket="vendor", Key="quarantine/prices_a/README.txt.reason.json")["Body"].read()
    assert b"no YYYY-MM-DD" in body


def test_the_delta_lake_writes_and_reads_on_s3(s3_endpoint):
    import boto3
    import polars as pl

    from resources.lake import DeltaLake

    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket="lake")
    opts = {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "aws_conditional_put": "etag",
    }
    lake = DeltaLake("s3://lake/lake", opts)
    d1, d2 = date(2024, 1, 2), date(2024, 1, 3)
    df = pl.DataFrame({"trade_date": [d1, d2], "ticker": ["A", "A"], "close": [1.0, 2.0]})
    lake.write_window("raw", "t", df, d1, d2)
    lake.write_window(
        "raw", "t", df.filter(pl.col("trade_date") == d2).with_columns(pl.lit(5.0).alias("close")), d2, d2
    )
    out = lake.read("raw", "t").sort("trade_date")
    assert out["close"].to_list() == [1.0, 5.0]
