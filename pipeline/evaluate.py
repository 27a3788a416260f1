"""DVC stage `evaluate@MODEL` (and `evaluate_grey`): score a model, or the grey baseline, on the
test split into reports/eval/NAME."""

import argparse

from chromalab.core import config, paths
from chromalab.core.errors import exit_on_user_error
from chromalab.core.logs import setup_stage


@exit_on_user_error
def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", help="a name under `models` in params.yaml, or `grey` for the baseline")
    name = parser.parse_args().model
    setup_stage()
    params = config.load_params()
    evaluate_params = config.section(params, "evaluate")
    from chromalab.scoring.evaluate import GREY, evaluate

    if name != GREY:
        config.model_params(params, name)  # an unknown name fails here, with the known ones
    evaluate(name, evaluate_params, paths.PREPARED, paths.PALETTE, paths.MODELS, paths.EVAL / name)


if __name__ == "__main__":
    main()
