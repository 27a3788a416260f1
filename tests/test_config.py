"""params.yaml validation: every mistake fails at once with a UserError that names the key."""

import textwrap
from pathlib import Path

import pytest

from chromalab.core.config import (
    PaletteParams,
    PrepareParams,
    TrainParams,
    league,
    load_params,
    model_params,
    parse_section,
    section,
)
from chromalab.core.errors import UserError


def write_params(tmp_path, text: str):
    path = tmp_path / "params.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# --- unknown keys -------------------------------------------------------------------------------


def test_typo_in_a_key_names_it_and_suggests_the_right_one():
    with pytest.raises(UserError) as err:
        section({"train": {"epoch": 3}}, "train")
    message = str(err.value)
    assert "train.epoch" in message
    assert "'epochs'" in message


def test_typo_in_a_key_read_from_a_real_file_is_reported(tmp_path):
    params = load_params(write_params(tmp_path, """
        train:
          epochs: 2
          batch_sise: 8
    """))
    with pytest.raises(UserError, match=r"train\.batch_sise: unknown parameter \(did you mean 'batch_size'\?\)"):
        section(params, "train")


def test_unknown_key_with_no_close_match_gives_no_suggestion():
    with pytest.raises(UserError) as err:
        section({"palette": {"zzzzzz": 1}}, "palette")
    assert "palette.zzzzzz" in str(err.value)
    assert "did you mean" not in str(err.value)


def test_unknown_top_level_section_is_rejected_with_a_suggestion(tmp_path):
    path = write_params(tmp_path, """
        prepare:
          size: 32
        trian:
          epochs: 2
    """)
    with pytest.raises(UserError) as err:
        load_params(path)
    message = str(err.value)
    assert str(path) in message
    assert "'trian'" in message
    assert "'train'" in message


# --- wrong types --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["ten", 2.5, True, None, [3]])
def test_non_integer_epochs_is_rejected_naming_the_key(value):
    with pytest.raises(UserError, match=r"^train\.epochs: expected an integer"):
        section({"train": {"epochs": value}}, "train")


def test_integer_where_a_bool_is_expected_is_rejected():
    with pytest.raises(UserError, match=r"^train\.amp: expected bool"):
        section({"train": {"amp": 1}}, "train")


def test_bool_where_a_float_is_expected_is_rejected():
    with pytest.raises(UserError, match=r"^train\.lr: expected float"):
        section({"train": {"lr": True}}, "train")


def test_yaml_1_1_exponent_string_is_read_as_the_float_it_means():
    # YAML 1.1 (PyYAML) reads `lr: 1e-3` as the *string* '1e-3'; users mean the number.
    assert section({"train": {"lr": "1e-3"}}, "train").lr == 0.001


def test_string_where_a_float_is_expected_is_rejected():
    with pytest.raises(UserError, match=r"^train\.lr: expected float, got 'fast'"):
        section({"train": {"lr": "fast"}}, "train")


def test_value_outside_a_literal_lists_the_choices():
    with pytest.raises(UserError) as err:
        section({"palette": {"space": "hsv"}}, "palette")
    message = str(err.value)
    assert message.startswith("palette.space:")
    assert "'ab'" in message and "'rgb'" in message and "'hsv'" in message


def test_section_that_is_not_a_mapping_is_rejected():
    with pytest.raises(UserError, match=r"^train: expected a mapping"):
        section({"train": [1, 2]}, "train")


def test_ints_are_accepted_for_float_params_and_become_floats():
    params = section({"train": {"lr": 1, "weight_decay": 0}}, "train")
    assert params.lr == 1.0 and isinstance(params.lr, float)
    assert params.weight_decay == 0.0 and isinstance(params.weight_decay, float)
    palette = section({"palette": {"bin_size": 10, "rebalance_sigma": 5}}, "palette")
    assert isinstance(palette.bin_size, float) and palette.bin_size == 10.0


def test_empty_section_gives_the_defaults():
    assert section({"train": None}, "train") == TrainParams()
    assert section({}, "prepare") == PrepareParams()


def test_optional_path_accepts_null_and_a_string():
    assert section({"data": {"source": "folder", "path": "photos"}}, "data").path == "photos"
    assert section({"data": {"path": None}}, "data").path is None
    with pytest.raises(UserError, match=r"^data\.path: expected str or list, got 3"):
        section({"data": {"path": 3}}, "data")


# --- ranges -------------------------------------------------------------------------------------


def test_zero_epochs_is_out_of_range():
    with pytest.raises(UserError, match=r"^train\.epochs: must be at least 1, got 0"):
        section({"train": {"epochs": 0}}, "train")


def test_palette_of_one_colour_is_out_of_range():
    with pytest.raises(UserError, match=r"^palette\.k: must be at least 2, got 1"):
        section({"palette": {"k": 1}}, "palette")


def test_val_and_test_fractions_that_leave_no_training_data_are_rejected():
    with pytest.raises(UserError) as err:
        section({"prepare": {"val_fraction": 0.5, "test_fraction": 0.5}}, "prepare")
    assert "prepare.val_fraction" in str(err.value)
    assert "prepare.test_fraction" in str(err.value)
    # Just below 1 is still allowed.
    ok = section({"prepare": {"val_fraction": 0.5, "test_fraction": 0.45}}, "prepare")
    assert ok.val_fraction + ok.test_fraction < 1


@pytest.mark.parametrize("sec, key, value", [
    ("prepare", "size", 4),
    ("prepare", "min_crop_fraction", 1.5),
    ("prepare", "val_fraction", -0.1),
    ("palette", "bin_size", 0.5),
    ("palette", "rebalance_lambda", 2.0),
    ("palette", "sample_pixels", 10),  # fewer pixels than the 32 colours asked for
    ("train", "lr", 0.0),
    ("train", "batch_size", 0),
    ("train", "device", "gpu"),
    ("evaluate", "gallery", -1),
])
def test_out_of_range_values_name_their_key(sec, key, value):
    with pytest.raises(UserError, match=rf"^{sec}\.{key}:"):
        section({sec: {key: value}}, sec)


def test_parse_section_uses_the_key_it_is_given_in_errors():
    with pytest.raises(UserError, match=r"^models\.x\.network_args: expected dict"):
        from chromalab.core.config import ModelParams

        parse_section("models.x", {"network_args": [1]}, ModelParams)


def test_the_shipped_params_yaml_is_valid():
    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    for name in ("data", "prepare", "palette", "train", "evaluate"):
        section(params, name)
    for name in league(params):
        # each seed model runs its own network; chromalab's own pairs its network with Zhang's bins
        expected = "encoder_unet" if name == "lite_bins" else name
        assert model_params(params, name).network == expected
    assert isinstance(section(params, "palette"), PaletteParams)


# --- league and models --------------------------------------------------------------------------


def test_league_naming_a_model_missing_under_models_is_rejected():
    params = {"league": ["unet", "unte2"], "models": {"unet": {}, "unet2": {}}}
    with pytest.raises(UserError) as err:
        league(params)
    assert "'unte2'" in str(err.value)
    assert "'unet2'" in str(err.value)  # suggestion


def test_league_may_not_contain_the_grey_baseline():
    with pytest.raises(UserError, match=r"^league: 'grey'"):
        league({"league": ["grey"], "models": {"grey": {}}})


def test_league_that_is_not_a_list_of_names_is_rejected():
    with pytest.raises(UserError, match=r"^league:"):
        league({"league": "unet", "models": {"unet": {}}})


def test_league_returns_the_names_in_order():
    params = {"league": ["b", "a"], "models": {"a": {}, "b": {}}}
    assert league(params) == ["b", "a"]


def test_unknown_network_lists_the_known_ones():
    from chromalab.colorizing.colorizer import check_names
    from chromalab.models import list_models

    model = model_params({"models": {"mine": {"network": "resnet9000"}}}, "mine")  # params alone: no registry
    with pytest.raises(UserError) as err:
        check_names("models.mine", model.network, model.representation)
    message = str(err.value)
    assert message.startswith("models.mine.network:")
    assert "'resnet9000'" in message
    assert f"known: {', '.join(list_models())}" in message and "unet" in message


def test_unknown_representation_lists_the_known_ones():
    from chromalab.colorizing.colorizer import check_names

    with pytest.raises(UserError, match=r"^models\.mine\.representation: .*known: .*\bab\b"):
        check_names("models.mine", "unet", "hsv")


def test_params_validation_does_not_import_torch():
    """The sections are checked before anything heavy loads (a typo fails in a second)."""
    import subprocess
    import sys

    code = ("import sys; from chromalab.core import config; "
            "config.model_params({'models': {'m': {'network': 'x'}}}, 'm'); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_model_missing_from_models_is_rejected_with_a_suggestion():
    with pytest.raises(UserError, match=r"^models\.unte: no such model.*'unet'"):
        model_params({"models": {"unet": {}}}, "unte")


def test_typo_in_a_model_key_is_named_with_its_full_path():
    with pytest.raises(UserError, match=r"^models\.unet\.netwrok: unknown parameter \(did you mean 'network'\?\)"):
        model_params({"models": {"unet": {"netwrok": "unet"}}}, "unet")


# --- the file itself ----------------------------------------------------------------------------


def test_invalid_yaml_is_a_user_error_naming_the_file(tmp_path):
    path = write_params(tmp_path, """
        train:
          epochs: [1, 2
    """)
    with pytest.raises(UserError) as err:
        load_params(path)
    assert str(path) in str(err.value)
    assert "not valid YAML" in str(err.value)


def test_missing_params_file_is_a_user_error_naming_the_file(tmp_path):
    path = tmp_path / "nowhere" / "params.yaml"
    with pytest.raises(UserError) as err:
        load_params(path)
    assert str(path) in str(err.value)


def test_params_file_that_is_not_a_mapping_is_rejected(tmp_path):
    path = write_params(tmp_path, "- train\n- prepare\n")
    with pytest.raises(UserError, match="expected a mapping of sections"):
        load_params(path)


def test_empty_params_file_gives_defaults(tmp_path):
    params = load_params(write_params(tmp_path, "# nothing yet\n"))
    assert params == {}
    assert section(params, "train") == TrainParams()


def test_a_model_can_override_train_values_and_typos_there_are_caught():
    from chromalab.core.config import train_params_for

    params = {"train": {"epochs": 8, "lr": 0.001},
              "models": {"fast": {"network": "unet", "train": {"epochs": 20}},
                         "plain": {"network": "unet"},
                         "typo": {"network": "unet", "train": {"epoch": 2}}}}
    assert train_params_for(params, "fast").epochs == 20 and train_params_for(params, "fast").lr == 0.001
    assert train_params_for(params, "plain").epochs == 8
    with pytest.raises(UserError, match=r"models.typo.train.epoch: unknown parameter.*epochs"):
        train_params_for(params, "typo")
