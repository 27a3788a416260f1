"""`make bench`'s pipeline figures (a no-op `dvc repro`) and its table in docs/benchmarks.md."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_common import ANCHOR_SIZE, MARK_END, MARK_START, PARTS, ROOT, TABLE_PAGE
from chromalab.core import paths


# --- the pipeline ----------------------------------------------------------------------------------


def noop_repro_seconds() -> dict:
    """`dvc repro` on this repository when its pipeline is up to date (else why not measured)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    status = subprocess.run(["dvc", "status", "--json"], cwd=ROOT, capture_output=True, text=True, env=env)
    if status.returncode != 0 or json.loads(status.stdout or "{}"):
        return {"noop_repro_seconds": None, "noop_repro_note": "pipeline not up to date: run `make repro` first"}
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run(["dvc", "repro"], cwd=ROOT, capture_output=True, check=True, env=env)
        times.append(time.perf_counter() - t0)
    return {"noop_repro_seconds": statistics.median(times)}


def recommended_model(names: list[str]) -> str:
    metrics = ROOT / paths.REPORTS / "metrics.json"
    if metrics.is_file():
        chosen = json.loads(metrics.read_text()).get("recommended")
        if chosen in names:
            return chosen
    return "unet" if "unet" in names else names[0]


def _split_row(label: str, f: dict) -> str:
    parts = " | ".join(f"{f[f'colorize_{k}_seconds_per_megapixel']:.4f}" for k in PARTS)
    return f"| {label} | {f['colorize_seconds_per_megapixel']:.3f} | {parts} | {f['colorize_prepost_fraction']:.0%} |"


def speed_lines(results: dict) -> list[str]:
    """The colorize split (ours, the workspace's lite_bins, the anchor), the big photo, the folder
    and lite_bins' training, as markdown."""
    r, a = results["released"], results["anchor"]
    rows = ["| colorize path | s/MP | decode | pre | network | post | PNG encode | pre+post share |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
            _split_row(f"released model ({r['model']}, {r['colorize_working_size']} px)", r)]
    if results.get("workspace_lite_bins"):
        w = results["workspace_lite_bins"]
        rows.append(_split_row(f"workspace lite_bins (data/models, {w['colorize_working_size']} px)", w))
    rows.append(_split_row(f"anchor: Zhang et al.'s demo pipeline, same network ({ANCHOR_SIZE} px)", a))
    rows += ["", f"The anchor takes {a['ratio_to_ours']:.1f} times as long as ours in all, "
             f"{a['prepost_ratio_to_ours']:.0f} times as long for pre+post; "
             f"{len(results['split_photos'])} photos at 1 MP: {', '.join(results['split_photos'])}."]
    b, fo = results["big_photo"], results["folder"]
    rows += ["", f"A {b['megapixels']:.0f} MP photo ({b['shape'][1]} x {b['shape'][0]}, released model): "
             f"{b['seconds']:.2f} s ({b['seconds_per_megapixel']:.3f} s/MP: decode {b['decode_seconds']:.2f}, "
             f"pre {b['preprocess_seconds']:.2f}, network {b['network_seconds']:.2f}, post "
             f"{b['postprocess_seconds']:.2f}, encode {b['encode_seconds']:.2f}), peak RSS {b['peak_rss_mb']:.0f} MB "
             f"({b['baseline_rss_mb']:.0f} MB before the photo); the full-resolution work in one piece instead "
             f"of strips: peak {b['untiled_peak_rss_mb']:.0f} MB.",
             "", f"A folder of {fo['photos']} photos ({fo['megapixels']:.1f} MP): {fo['overlapped_seconds']:.2f} s with the "
             f"next photo decoded beside the colorizing, {fo['sequential_seconds']:.2f} s one after the other "
             f"({fo['speedup']:.2f}x; same files: {'yes' if fo['same_outputs'] else 'NO'})."]
    if results.get("lite_bins_training"):
        t = results["lite_bins_training"]
        frozen = t["frozen"]
        labels = {"frozen_uncached": "frozen, its features computed every step",
                  "last_2_blocks": "last 2 blocks fine-tuned", "all_blocks": "every block fine-tuned"}
        parts = [f"encoder frozen, features cached ({frozen['feature_cache_mb']:.0f} MB, computed in "
                 f"{frozen['setup_seconds']:.1f} s with the setup) {frozen['images_per_second']:.0f}"]
        parts += [f"{labels.get(name, name)} {v['images_per_second']:.0f} "
                  f"({frozen['images_per_second'] / v['images_per_second']:.1f}x slower)"
                  for name, v in t.items() if name != "frozen"]
        rows += ["", f"lite_bins training, images/s at {frozen['image_size']} px, batch {frozen['batch_size']} "
                 f"(train._train_epoch on {frozen['images']} images after 2 warm-up batches): " + "; ".join(parts) + "."]
    return rows


def write_table(results: dict) -> None:
    rows = ["| model | colorize s/MP | pre+post share | network s/MP | train img/s | data-path ratio | GFLOP/img | % of matmul peak |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, m in results["models"].items():
        mark = " (recommended)" if name == results["recommended"] else ""
        rows.append(f"| {name}{mark} | {m['colorize_seconds_per_megapixel']:.3f} | {m['colorize_prepost_fraction']:.0%} "
                    f"| {m['colorize_network_seconds_per_megapixel']:.3f} | {m['train_images_per_second']:.0f} "
                    f"| {m['train_data_path_ratio']:.2f} | {m['train_gflop_per_image']:.3f} | {m['train_peak_fraction']:.1%} |")
    r = results["released"]
    rows.insert(2, f"| released model ({r['model']}, {r['colorize_working_size']} px) | "
                   f"{r['colorize_seconds_per_megapixel']:.3f} | {r['colorize_prepost_fraction']:.0%} | "
                   f"{r['colorize_network_seconds_per_megapixel']:.3f} | — | — | — | — |")
    if results.get("workspace_lite_bins"):
        w = results["workspace_lite_bins"]
        rows.insert(3, f"| workspace lite_bins (data/models, {w['colorize_working_size']} px) | "
                       f"{w['colorize_seconds_per_megapixel']:.3f} | {w['colorize_prepost_fraction']:.0%} | "
                       f"{w['colorize_network_seconds_per_megapixel']:.3f} | — | — | — | — |")
    p = results["pipeline"]
    noop = f"{p['noop_repro_seconds']:.2f} s" if p.get("noop_repro_seconds") is not None else p.get("noop_repro_note")
    load = results["machine"]["load_average"]
    rows += ["", "League models: freshly built (2 training steps, the bench's 64 px data), colorizing the first "
             f"{results['league_photos']} photos at their 64 px training size.", ""]
    rows += speed_lines(results)
    rows += ["", f"Machine: torch threads {results['machine']['threads']}, fp32 matmul peak "
             f"{results['machine']['matmul_gflops']:.0f} GFLOP/s, load average {load[0]:.1f} at the start and "
             f"{results['machine']['load_average_end'][0]:.1f} at the end. prepare: {p['prepare_1x']['images_per_second']:.0f} "
             f"images/s, peak RSS {p['prepare_1x']['peak_rss_mb']:.0f} MB at {p['prepare_1x']['images']} images and "
             f"{p['prepare_4x']['peak_rss_mb']:.0f} MB at {p['prepare_4x']['images']}; palette k-means (k = 32, 1 M pixels) "
             f"{p['palette_fit_seconds']:.1f} s; no-op `dvc repro` {noop}. "
             f"Measured by `make bench` on {results['date']} in {results['seconds']:.0f} s."]
    text = TABLE_PAGE.read_text()
    if MARK_START in text and MARK_END in text:
        head, rest = text.split(MARK_START, 1)
        _, tail = rest.split(MARK_END, 1)
        TABLE_PAGE.write_text(f"{head}{MARK_START}\n" + "\n".join(rows) + f"\n{MARK_END}{tail}")
