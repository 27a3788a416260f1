"""What every benchmark of `make bench` shares: where things are, how a time is taken, memory,
and a measurement run in a process of its own (bench.py --child)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).with_name("bench.py")  # runs a child measurement: bench.py --child KIND JSON
TABLE_PAGE = ROOT / "docs" / "benchmarks.md"
MARK_START, MARK_END = "<!-- bench:start -->", "<!-- bench:end -->"
SHARED_PHOTOS = ROOT.parent / "shared" / "datasets" / "photos"
SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
PARTS = ("decode", "preprocess", "network", "postprocess", "encode")
BIG_SHAPE = (3000, 4000)  # 12 megapixels, a phone camera's photo
ANCHOR_SIZE = 256  # Zhang et al.'s demo resizes every photo to 256 x 256


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def matmul_peak(n: int = 2048) -> float:
    """fp32 FLOP/s of a large matrix product, the best this CPU does with torch's threads."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    return 2 * n**3 / best_of(lambda: a @ b, 5)


def rss_mb() -> float:
    """This process's resident memory now (VmRSS), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(kind: str, **kwargs) -> dict:
    """Run `bench.py --child KIND` in a process of its own (its peak RSS and torch's global state are
    its own) and return the JSON it prints last."""
    result = subprocess.run([sys.executable, str(BENCH), "--child", kind, json.dumps(kwargs)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"bench child {kind} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
