"""Alternative-data throughput on this machine: images per second (car detection, tank analysis) and documents
per second (transcript sentiment, filing features), all on CPU with 2 torch threads by default.

Run: ``.venv/bin/python benchmarks/altdata.py [--quick] [--threads 2] [--weights PATH]``.

One entry point over the two detailed benchmarks, whose measurements it runs in this process:
``altdata_vision.measure`` (the platform's ``count_cars`` against ultralytics' own ``predict`` on the same PNGs,
at 320 px and, full size, 640 px; tank analysis) and ``altdata_text.measure`` (transcript sentiment one document
at a time with p50/p95 latency and in one batched pass; filing features without and with section sentiment;
the sentence-transformers / scikit-learn / textstat peers). Prints one combined table and, as the last line,
one JSON object with every figure (the two modules' full figures included). Other work on the machine skews
every figure: the 1-minute load average is reported at start and end.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import altdata_text
import altdata_vision
from _common import emit, machine, print_table

from alpha_assets.lib.altdata.nlp._offline import prepare_offline_torch


def rows_from(vision: dict, text: dict) -> list[dict]:
    """One row per measurement: items, seconds, items per second and, where timed per item, p50/p95."""
    rows = [
        {
            "task": f"{r['task']} {r['imgsz']} px" if r["task"] == "car detection" else r["task"],
            "implementation": r["impl"],
            "mode": r["mode"],
            "items": r["images"],
            "unit": "images",
            "seconds": r["seconds"],
            "per_s": r["images_per_s"],
            "p50_s": None,
            "p95_s": None,
        }
        for r in vision["results"]
    ]
    ((_, by),) = text["by_threads"].items()
    tr, fi = by["transcripts"], by["filings"]
    for task, impl, mode, n, per_s, lat in (
        (
            "transcript sentiment",
            "score_transcript",
            "1 doc",
            tr["documents"],
            tr["docs_per_s_sequential"],
            tr["latency"],
        ),
        (
            "transcript sentiment",
            "score_transcripts",
            "batched",
            tr["documents"],
            tr["docs_per_s_batched"],
            None,
        ),
        (
            "filing features",
            "filing_features_from_file",
            "no model",
            fi["documents"],
            fi["docs_per_s_without_model"],
            fi["latency_without_model"],
        ),
        (
            "filing features",
            "filing_features_from_file",
            "+sentiment",
            fi["documents"],
            fi["docs_per_s_with_sentiment"],
            fi["latency_with_sentiment"],
        ),
    ):
        rows.append(
            {
                "task": task,
                "implementation": impl,
                "mode": mode,
                "items": n,
                "unit": "docs",
                "seconds": n / per_s,
                "per_s": per_s,
                "p50_s": lat["p50_s"] if lat else None,
                "p95_s": lat["p95_s"] if lat else None,
            }
        )
    return rows


def summary(vision: dict, text: dict) -> dict:
    """The headline figures: the issue's images/s and docs/s, at the detector's training size (320 px)."""
    ours, peer = altdata_vision.headline(vision, 320)
    peer_batched = next(
        r
        for r in vision["results"]
        if r["impl"] == peer["impl"] and r["mode"] == "batch 16" and r["imgsz"] == 320
    )
    tank = next(r for r in vision["results"] if r["task"] == "tank analysis")
    ((_, by),) = text["by_threads"].items()
    tr, fi = by["transcripts"], by["filings"]
    return {
        "car_detection_images_per_s": {
            "imgsz": 320,
            "count_cars_batch16": ours["images_per_s"],
            "ultralytics_predict_batch1": peer["images_per_s"],
            "ultralytics_predict_batch16": peer_batched["images_per_s"],
            "ratio_vs_ultralytics_batch1": ours["images_per_s"] / peer["images_per_s"],
        },
        "tank_analysis_images_per_s": tank["images_per_s"],
        "transcript_sentiment": {
            "docs_per_s_one_at_a_time": tr["docs_per_s_sequential"],
            "docs_per_s_batched": tr["docs_per_s_batched"],
            "p50_s_per_doc": tr["latency"]["p50_s"],
            "p95_s_per_doc": tr["latency"]["p95_s"],
        },
        "filing_features_docs_per_s": {
            "without_model": fi["docs_per_s_without_model"],
            "with_sentiment": fi["docs_per_s_with_sentiment"],
        },
        "goal_under_1s_per_document": text["goal_under_1s_per_document"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run, well under 2 minutes)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--weights", type=Path, default=None, help="trained detector weights (optional)")
    args = parser.parse_args()

    prepare_offline_torch()
    import torch

    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()[0]
    start = time.perf_counter()
    vision = altdata_vision.measure(args.quick, args.weights, args.threads)
    text = altdata_text.measure(args.quick, [args.threads])
    wall_s = time.perf_counter() - start

    mach = {
        **machine(),
        "torch": torch.__version__,
        "torch_threads": args.threads,
        "torch_threads_after_detection": vision["machine"]["torch_threads_after_detection"],
        "torchvision_nms": vision["machine"]["torchvision_nms"],
        "load_average_1m_start": round(load_start, 2),
        "load_average_1m_end": round(os.getloadavg()[0], 2),
    }
    tr = next(iter(text["by_threads"].values()))["transcripts"]
    tank = next(r for r in vision["results"] if r["task"] == "tank analysis")
    sizes = {
        "parking_images": vision["results"][0]["images"],
        "tank_images": tank["images"],
        "transcripts": tr["documents"],
        "transcript_sentences": tr["sentences"],
        "filings": next(iter(text["by_threads"].values()))["filings"]["documents"],
    }
    rows = rows_from(vision, text)
    head = summary(vision, text)

    print(
        f"machine: {mach['cores']} cores, {mach['memory_gib']} GiB, {mach['platform']}, python {mach['python']}, "
        f"torch {mach['torch']} ({args.threads} threads, torchvision NMS {mach['torchvision_nms']}), "
        f"load average {mach['load_average_1m_start']:.1f} at start, {mach['load_average_1m_end']:.1f} at end"
    )
    print(
        f"sizes: {sizes['parking_images']} parking-lot images, {sizes['tank_images']} tank-farm images, "
        f"{sizes['transcripts']} transcripts ({sizes['transcript_sentences']} sentences), "
        f"{sizes['filings']} filings{' (--quick)' if args.quick else ''}"
    )
    print(
        f"detector: {vision['machine']['weights']} (throughput does not depend on the weights); "
        f"sentiment: {text['model']['name']}"
    )
    print()
    print_table(
        ["task", "implementation", "mode", "items", "seconds", "per s", "unit", "p50 s", "p95 s"],
        [
            [
                r["task"],
                r["implementation"],
                r["mode"],
                r["items"],
                f"{r['seconds']:.2f}",
                f"{r['per_s']:.1f}",
                f"{r['unit']}/s",
                "-" if r["p50_s"] is None else f"{r['p50_s']:.3f}",
                "-" if r["p95_s"] is None else f"{r['p95_s']:.3f}",
            ]
            for r in rows
        ],
    )
    car = head["car_detection_images_per_s"]
    print()
    print(
        f"car detection at 320 px: count_cars (batch 16) {car['count_cars_batch16']:.1f} images/s, "
        f"{car['ratio_vs_ultralytics_batch1']:.2f}x ultralytics predict one image at a time "
        f"({car['ultralytics_predict_batch1']:.1f}/s; its batch 16: {car['ultralytics_predict_batch16']:.1f}/s)"
    )
    pe = text["peer_encoder"]
    if "sentence_transformers_sentences_per_s" in pe:
        print(
            f"sentence encoder: ours {pe['ours_sentences_per_s']:.0f} sentences/s, sentence-transformers "
            f"{pe['sentence_transformers_sentences_per_s']:.0f}/s (max |embedding diff| "
            f"{pe['max_abs_embedding_diff']:.1e})"
        )
    p95 = text["p95_latency_best_threads_s"]
    print(
        f"goal < 1 s per document (p95): {'met' if p95 < 1.0 else 'NOT met'} ({p95:.2f} s); "
        f"wall time {wall_s:.0f} s"
    )
    emit(
        {
            "benchmark": "altdata",
            "quick": args.quick,
            "machine": mach,
            "sizes": sizes,
            "wall_seconds": wall_s,
            "summary": head,
            "rows": rows,
            "vision": vision,
            "text": text,
        }
    )


if __name__ == "__main__":
    main()
