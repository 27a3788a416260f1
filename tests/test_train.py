import csv
import json

import mlflow
import pytest
import torch

from chromalab.colorizing import checkpoint
from chromalab.colorizing.device import select_device
from chromalab.core import tracking
from chromalab.core.config import ModelParams, TrainParams
from chromalab.core.errors import UserError
from chromalab.data.prepare import prepare
from chromalab.training.augment import augment, augmentation_table
from chromalab.training.train import lr_factor, train

from helpers import TINY_MODEL, TINY_PREPARE, train_tiny


def _history(tmp_path, name):
    with open(tmp_path / "reports" / "train" / name / "history.csv") as f:
        return list(csv.DictReader(f))


def test_training_lowers_the_loss(tmp_path, prepared_dir, mlflow_uri):
    train_tiny(tmp_path, prepared_dir, epochs=5, hflip=False)
    losses = [float(r["train_loss"]) for r in _history(tmp_path, "tiny")]
    assert len(losses) == 5
    assert losses[-1] < 0.8 * losses[0]


def test_training_is_deterministic_on_cpu(tmp_path, prepared_dir, mlflow_uri):
    a = train_tiny(tmp_path, prepared_dir, name="a")
    b = train_tiny(tmp_path, prepared_dir, name="b")
    assert _history(tmp_path, "a") == _history(tmp_path, "b")
    sa, sb = (checkpoint.read(d / "last.pt")["state_dict"] for d in (a, b))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_different_seed_trains_a_different_model(tmp_path, prepared_dir, mlflow_uri):
    a = train_tiny(tmp_path, prepared_dir, name="a", seed=0)
    b = train_tiny(tmp_path, prepared_dir, name="b", seed=1)
    sa, sb = (checkpoint.read(d / "last.pt")["state_dict"] for d in (a, b))
    assert not all(torch.equal(sa[k], sb[k]) for k in sa)


def test_best_checkpoint_records_lineage_and_loads_with_weights_only(trained_model, prepared_dir, mlflow_uri):
    payload = torch.load(trained_model / "best.pt", weights_only=True)
    config = payload["config"]
    assert config["network"] == "unet" and config["representation"] == "ab"
    assert config["image_size"] == TINY_PREPARE.size
    assert config["epoch"] in (1, 2) and config["parameters"] > 0
    summary_sha = (prepared_dir / "summary.json").read_text()
    assert config["data_sha256"] in summary_sha
    assert (trained_model / "last.pt").is_file()


def test_mlflow_run_has_params_epoch_metrics_tags_and_a_model_for_any_size(trained_model, prepared_dir, mlflow_uri):
    config = checkpoint.read(trained_model / "best.pt")["config"]
    mlflow.set_tracking_uri(mlflow_uri)
    run = mlflow.get_run(json.loads((trained_model / "run.json").read_text())["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["train.epochs"] == "2"
    assert run.data.params["model.network_args.base_channels"] == "8"
    assert run.data.tags["data_manifest_sha256"] == config["data_sha256"]
    assert "git_commit" in run.data.tags and "dvc_stage" in run.data.tags
    history = mlflow.tracking.MlflowClient().get_metric_history(run.info.run_id, "val_loss")
    assert [m.step for m in history] == [1, 2]
    model = mlflow.pytorch.load_model(tracking.read_run_file(trained_model / "run.json")["model_uri"])
    with torch.no_grad():
        ab = model(torch.full((1, 1, 45, 71), 60.0))
    assert ab.shape == (1, 2, 45, 71)


def test_size_that_the_network_cannot_take_is_a_user_error(tmp_path, raw_dir, mlflow_uri):
    prepared = tmp_path / "prepared24"
    prepare(TINY_PREPARE.__class__(**{**TINY_PREPARE.__dict__, "size": 24}), raw_dir, prepared)
    with pytest.raises(UserError, match="prepare.size: 24 is not a multiple of 16"):
        train("tiny", ModelParams(**TINY_MODEL), TrainParams(epochs=1), prepared, None, tmp_path / "m",
              tmp_path / "h.csv", logged_params={})
    assert not (tmp_path / "m").exists()


def test_auto_device_is_cpu_without_cuda_and_cuda_without_one_is_an_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert select_device("auto").type == "cpu"
    with pytest.raises(UserError, match="train.device cuda: this machine has no CUDA device"):
        select_device("cuda")
    with pytest.raises(UserError, match=r"--device tpu: expected auto, cpu, cuda or cuda:N"):
        select_device("tpu", "--device")
    with pytest.raises(UserError, match=r"train.device cuda:x: expected"):
        select_device("cuda:x")


def test_augmentation_moves_pixels_with_their_colours_and_depends_only_on_seed_and_epoch():
    L = torch.arange(64.0).reshape(1, 1, 8, 8).repeat(8, 1, 1, 1)
    ab = torch.cat([L, -L], dim=1)
    params = TrainParams(hflip=True, translate=2, seed=3)
    table = augmentation_table(8, params, epoch=1)
    assert torch.equal(table["flip"], augmentation_table(8, params, epoch=1)["flip"])
    assert not torch.equal(table["shift"], augmentation_table(8, params, epoch=2)["shift"])
    L2, ab2 = augment(L, ab, torch.arange(8), table, translate=2)
    assert 0 < int(table["flip"].sum()) < 8
    assert any(not torch.equal(L2[i], L[i]) for i in range(8))
    # colours travel with their pixels: ab still equals (L, -L) everywhere
    assert torch.equal(ab2[:, 0], L2[:, 0]) and torch.equal(ab2[:, 1], -L2[:, 0])
    # the values are the photo's own (reflect padding), never invented
    assert set(L2.unique().tolist()) <= set(L.unique().tolist())


def test_learning_rate_warms_up_then_decays_by_cosine():
    factors = [lr_factor("cosine", step, total=100, warmup=10) for step in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))
    assert factors[-1] < 0.01
    assert lr_factor("constant", 50, total=100, warmup=0) == 1.0


def test_without_a_val_split_the_last_epoch_is_kept(tmp_path, raw_dir, mlflow_uri):
    prepared = tmp_path / "prepared_noval"
    prepare(TINY_PREPARE.__class__(**{**TINY_PREPARE.__dict__, "val_fraction": 0.0}), raw_dir, prepared)
    out = train_tiny(tmp_path, prepared, epochs=2)
    assert checkpoint.read(out / "best.pt")["config"]["epoch"] == 2


def test_annealed_mean_temperature_is_chosen_on_val_and_kept_in_the_checkpoint(tmp_path, prepared_dir, palette_dir,
                                                                              mlflow_uri):
    model = dict(network="unet", representation="bins", network_args={"base_channels": 8})
    out = train_tiny(tmp_path, prepared_dir, name="bins", epochs=1, palette_dir=palette_dir, model=model,
                     temperatures=[0.1, 1.0], max_delta_colorfulness=1000.0)
    config = checkpoint.read(out / "best.pt")["config"]
    sweep = config["temperature_sweep"]
    assert [s["temperature"] for s in sweep] == [0.1, 1.0]
    # every T qualifies under a huge bound, so the best val PSNR wins
    assert config["representation_args"]["temperature"] == max(sweep, key=lambda s: s["val_psnr"])["temperature"]
    colorizer, _ = checkpoint.load(out / "best.pt")
    assert colorizer.representation.temperature == config["representation_args"]["temperature"]
    # T changes the colours: the sweep is not scoring the same decode twice
    assert sweep[0]["val_delta_colorfulness"] != sweep[1]["val_delta_colorfulness"]
    assert all(s["val_neutral_chroma"] >= 0 for s in sweep)  # scored at every T, for the rule to use


def test_gpu_settings_are_inert_on_the_cpu_and_determinism_turns_cudnn_autotuning_off():
    from chromalab.training.train import autocast, seed_everything

    context, scaler = autocast(torch.device("cpu"), enabled=True)
    assert scaler is None and type(context).__name__ == "nullcontext"  # AMP is for CUDA only
    seed_everything(0, deterministic=True)
    assert torch.backends.cudnn.benchmark is False and torch.are_deterministic_algorithms_enabled()
    seed_everything(0, deterministic=False)
    assert torch.backends.cudnn.benchmark is True
    seed_everything(0, deterministic=True)


@pytest.mark.slow
def test_torch_compile_flag_trains_the_same_model_within_float_tolerance(tmp_path, prepared_dir, mlflow_uri,
                                                                        monkeypatch):
    # Through dynamo and AOT autograd, the path train.compile takes, without inductor's C++ code
    # generation (100 s on a 2-core CPU, and torch's own concern).
    compiled_modules = []

    def compile_for_test(module, **kwargs):
        compiled_modules.append(module)
        return real_compile(module, backend="aot_eager", **kwargs)

    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", compile_for_test)
    plain = train_tiny(tmp_path / "plain", prepared_dir, epochs=1, hflip=False)
    assert not compiled_modules
    compiled = train_tiny(tmp_path / "compiled", prepared_dir, epochs=1, hflip=False, compile=True)
    assert len(compiled_modules) == 1
    a = checkpoint.read(plain / "last.pt")["state_dict"]
    b = checkpoint.read(compiled / "last.pt")["state_dict"]
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-3) for k in a)


def test_with_a_temperature_sweep_the_epoch_is_chosen_by_faithful_colour_then_psnr():
    from chromalab.training.selection import better as _better

    best = {"val_loss": 1.0, "val_psnr": 23.0, "val_delta_colorfulness": 9.0}
    faithful = {"val_loss": 2.0, "val_psnr": 22.0, "val_delta_colorfulness": 4.0}
    assert _better(faithful, best, sweeping=True, max_delta_cf=5.0)  # within the bound beats a higher PSNR
    assert not _better(faithful, best, sweeping=False, max_delta_cf=5.0)  # without a sweep: the val loss
    sharper = {**faithful, "val_psnr": 22.5}
    assert _better(sharper, faithful, True, 5.0) and not _better(faithful, sharper, True, 5.0)
    closer = {**best, "val_delta_colorfulness": 7.0, "val_psnr": 20.0}
    assert _better(closer, best, True, 5.0)  # none within the bound: the closest colourfulness


SWEEP = [  # a temperature sweep on val: the sharper T has the better PSNR but casts colour on greys
    {"temperature": 0.2, "val_psnr": 24.0, "val_delta_colorfulness": 3.0, "val_neutral_chroma": 6.0},
    {"temperature": 0.6, "val_psnr": 23.0, "val_delta_colorfulness": 4.0, "val_neutral_chroma": 2.5},
    {"temperature": 1.0, "val_psnr": 22.0, "val_delta_colorfulness": 9.0, "val_neutral_chroma": 1.0},
]


def test_the_selection_rule_trades_psnr_for_neutral_greys_only_under_a_limit():
    from chromalab.training.selection import choose

    assert choose(SWEEP, 5.0)["temperature"] == 0.2  # no neutral chroma limit (the default): best PSNR
    assert choose(SWEEP, 5.0, max_neutral_chroma=3.0)["temperature"] == 0.6  # 0.2 casts 6 > 3 on greys
    # None within both limits: the smallest summed excess, each divided by its limit. Under (ΔCF 5,
    # neutral chroma 1): T 0.2 misses by 5/1, T 0.6 by 1.5/1, T 1.0 by 4/5 (ΔCF only).
    assert choose(SWEEP, 5.0, max_neutral_chroma=1.0)["temperature"] == 1.0
    assert choose(SWEEP, 5.0, max_neutral_chroma=2.0)["temperature"] == 0.6  # 0.2: 2; 0.6: 0.25; 1.0: 0.8
    assert choose(SWEEP, 1.0)["temperature"] == 0.2  # ΔCF only: the closest colourfulness, as before


def test_the_fallback_normalises_each_excess_by_its_limit():
    from chromalab.training.selection import choose, violation

    assert violation(SWEEP[0], 5.0, 1.0) == pytest.approx(5.0)
    assert violation(SWEEP[2], 5.0, 1.0) == pytest.approx(0.8)
    assert violation(SWEEP[1], 5.0, None) == 0.0 and violation(SWEEP[1], 0.0, None) == 4.0  # a limit of 0: raw
    assert violation({**SWEEP[0], "val_neutral_chroma": float("nan")}, 5.0, 1.0) == 0.0  # no neutral pixel on val
    assert choose(SWEEP, 5.0, max_neutral_chroma=0.5)["temperature"] == 1.0  # 0.2: 11; 0.6: 4; 1.0: 0.8 + 1


def test_the_epoch_is_chosen_by_the_same_rule_and_a_neutral_chroma_limit_binds_without_a_sweep():
    from chromalab.training.selection import better as _better

    sharp, clean = SWEEP[0], SWEEP[1]
    assert _better(sharp, clean, sweeping=True, max_delta_cf=5.0)
    assert not _better(sharp, clean, sweeping=True, max_delta_cf=5.0, max_neutral_chroma=3.0)
    assert _better(clean, sharp, sweeping=True, max_delta_cf=5.0, max_neutral_chroma=3.0)
    # Without a sweep: the val loss, among the epochs within the limit when one is set.
    low_loss, high_loss = {**sharp, "val_loss": 1.0}, {**clean, "val_loss": 2.0}
    assert _better(low_loss, high_loss, sweeping=False, max_delta_cf=5.0)
    assert not _better(low_loss, high_loss, sweeping=False, max_delta_cf=5.0, max_neutral_chroma=3.0)


def test_the_sweep_runs_every_epoch_and_the_history_says_which_temperature(tmp_path, prepared_dir, palette_dir,
                                                                           mlflow_uri):
    import csv

    model = dict(network="unet", representation="bins", network_args={"base_channels": 8})
    out = train_tiny(tmp_path, prepared_dir, name="bins", epochs=2, palette_dir=palette_dir, model=model,
                     temperatures=[0.1, 0.5, 1.0], max_delta_colorfulness=8.0)
    with open(tmp_path / "reports" / "train" / "bins" / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and all(float(r["temperature"]) in (0.1, 0.5, 1.0) for r in rows)
    assert all(float(r["val_neutral_chroma"]) >= 0 for r in rows)

    def key(r):
        dcf, psnr = float(r["val_delta_colorfulness"]), float(r["val_psnr"])
        return (dcf <= 8.0, psnr if dcf <= 8.0 else -dcf)

    chosen = max(rows, key=key)
    config = checkpoint.read(out / "best.pt")["config"]
    assert config["epoch"] == int(chosen["epoch"])
    assert config["representation_args"]["temperature"] == float(chosen["temperature"])


def test_cached_features_reach_the_batch_device():
    """The frozen features live in CPU memory; a model on a GPU must get them on its device (the
    meta device stands in for CUDA here: the same .to() path, no GPU needed)."""
    from chromalab.training.feature_cache import FeatureCache, extra_inputs

    cache = FeatureCache((torch.ones(4, 3, 2, 2), torch.zeros(4, 5)), (torch.full((4, 3, 2, 2), 2.0), torch.ones(4, 5)))
    batch = {"rows": torch.tensor([0, 2]), "L": torch.empty(2, 1, 8, 8, device="meta")}
    feats = extra_inputs(cache, batch, torch.tensor([True, False]))["precomputed"]
    assert all(f.device.type == "meta" for f in feats) and feats[0].shape == (2, 3, 2, 2)
    on_cpu = extra_inputs(cache, {**batch, "L": torch.empty(2, 1, 8, 8)}, torch.tensor([True, False]))["precomputed"]
    assert on_cpu[0][0].eq(2).all() and on_cpu[0][1].eq(1).all()  # the mirrored image's features where flipped
    assert extra_inputs(None, batch) == {}


def test_mirrored_features_are_computed_for_the_train_split_only_and_match_nchw(prepared_dir):
    """Only the flip augmentation reads the mirror images' features: val gets none (they cost as
    much as the plain ones). The channels-last pass that computes them gives the features the
    network's own (NCHW) forward gives, up to float16 storage."""
    import numpy as np

    from chromalab.colorizing.colorizer import Colorizer
    from chromalab.core import color
    from chromalab.data.lab_arrays import LabBatches
    from chromalab.training.feature_cache import precompute

    colorizer = Colorizer("encoder_unet", "ab", {"decoder_channels": 16, "pretrained": False})
    data = LabBatches(prepared_dir, "val")
    plain_only = precompute(colorizer, data, 4, torch.device("cpu"), mirrors=False)
    both = precompute(colorizer, data, 4, torch.device("cpu"))
    assert plain_only.mirrored is None and both.mirrored is not None
    with torch.no_grad():
        x = color.normalize_l(torch.from_numpy(np.asarray(data.L[:2], np.float32)))
        direct = colorizer.network.precompute(x)
    for cached, exact in zip(plain_only.plain, direct):
        assert cached.dtype == exact.dtype and torch.allclose(cached[:2].float(), exact.float(), atol=2e-2, rtol=1e-2)
    assert all(p.is_contiguous() for p in colorizer.parameters())  # the layout is given back
