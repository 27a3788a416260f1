"""The recommendation: which model of a run to colorize with. One rule, used by the report (and the
MLflow champion it registers) and by `chromalab colorize --model recommended`."""

from __future__ import annotations

import logging

from chromalab.core.config import GREY

log = logging.getLogger(__name__)

RECOMMENDED = "recommended"  # its key in reports/metrics.json (build_report refuses it as a model name)


def recommended_model(records: list[dict], max_delta_colorfulness: float = 5.0) -> str | None:
    """The model to colorize with: the best test PSNR among the models whose colourfulness is
    within `max_delta_colorfulness` of the ground truth's (|ΔCF|), since PSNR alone rewards timid,
    washed-out colours. When no model is that faithful, the best PSNR overall, with a warning.
    The grey baseline is never recommended; None when there is no model at all.

    `records` are dicts with name, psnr and delta_colorfulness (a report record or an entry of
    reports/metrics.json); ties go to the first in league order.
    """
    models = [r for r in records if r["name"] != GREY]
    if not models:
        return None
    faithful = [r for r in models if abs(r["delta_colorfulness"]) <= max_delta_colorfulness]
    if not faithful:
        best = max(models, key=lambda r: r["psnr"])
        log.warning("no model has |ΔCF| <= %g (report.max_delta_colorfulness); recommending %s, "
                    "the best PSNR overall", max_delta_colorfulness, best["name"])
        return best["name"]
    return max(faithful, key=lambda r: r["psnr"])["name"]


def recommendation_note(records: list[dict], recommended: str | None, max_delta_colorfulness: float) -> str:
    """The rule in words, for the page and the CLI."""
    if recommended is None:
        return "No model to recommend: the league is empty."
    record = next(r for r in records if r["name"] == recommended)
    faithful = abs(record["delta_colorfulness"]) <= max_delta_colorfulness
    why = (f"the best test PSNR among the models whose |ΔCF| ≤ {max_delta_colorfulness:g}"
           if faithful else f"the best test PSNR overall: no model has |ΔCF| ≤ {max_delta_colorfulness:g}")
    return (f"Recommended: {recommended} ({record['psnr']:.2f} dB, ΔCF {record['delta_colorfulness']:.2f}), "
            f"{why} (report.max_delta_colorfulness).")
