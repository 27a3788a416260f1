"""Checkpoints: a state_dict plus a plain config, read back with torch.load(weights_only=True).

weights_only=True never unpickles code, so a checkpoint from elsewhere can be inspected safely;
everything needed to rebuild the model (network, representation, their knobs) is in `config`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from chromalab import atomic
from chromalab.colorizer import Colorizer
from chromalab.errors import UserError

FORMAT = "chromalab-checkpoint/1"


def save(path, colorizer: Colorizer, config: dict, extra: dict | None = None) -> None:
    """Write atomically: a crash mid-save leaves the previous checkpoint intact."""
    payload = {"format": FORMAT, "config": config, "state_dict": colorizer.state_dict(), **(extra or {})}
    with atomic.atomic_path(path) as tmp:
        torch.save(payload, tmp)


def read(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such checkpoint")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a tampered or foreign file: say what, never unpickle it
        raise UserError(f"{path}: not a loadable chromalab checkpoint ({str(err).splitlines()[0]})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(f"{path}: not a chromalab checkpoint (format {payload.get('format') if isinstance(payload, dict) else None!r})")
    return payload


def load(path, device="cpu") -> tuple[Colorizer, dict]:
    """Rebuild the Colorizer a checkpoint describes, in eval mode on `device`."""
    payload = read(path)
    config = payload["config"]
    network_args = dict(config.get("network_args") or {})
    if network_args.get("pretrained"):
        # The checkpoint holds every weight: don't fetch the hub or need the original weights file.
        network_args["pretrained"] = False
    try:
        colorizer = Colorizer(config["network"], config["representation"],
                              network_args, config.get("representation_args"))
    except (UserError, KeyError) as err:
        raise UserError(f"{path}: cannot rebuild its model ({err})") from None
    try:
        colorizer.load_state_dict(payload["state_dict"])
    except RuntimeError as err:
        raise UserError(f"{path}: weights do not fit {config['network']}/{config['representation']} "
                        f"({str(err).splitlines()[0]})") from None
    return colorizer.to(device).eval(), config
