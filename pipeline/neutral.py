"""DVC stage `neutral@MODEL`: how much colour a model paints on grey inputs (synthetic grey
textures and the photos prepare dropped as already grey), into reports/neutral/MODEL."""

import argparse

from chromalab.core import config, paths
from chromalab.core.errors import exit_on_user_error
from chromalab.core.logs import setup_stage


@exit_on_user_error
def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", help="a name under `models` in params.yaml (or `grey` for the baseline)")
    name = parser.parse_args().model
    setup_stage()
    params = config.load_params()
    neutral_params = config.section(params, "neutral")
    from chromalab.scoring.neutral import GREY, NEUTRAL, neutral

    if name != GREY:
        config.model_params(params, name)  # an unknown name fails here, with the known ones
    neutral(name, neutral_params, paths.MODELS, paths.PREPARED, paths.RAW, NEUTRAL / name)


if __name__ == "__main__":
    main()
