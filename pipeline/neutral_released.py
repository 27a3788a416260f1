"""DVC stage `neutral_released`: the neutral-scene check (scoring/neutral.py) of chromalab's released model,
the one `chromalab colorize` uses when no model is named (src/chromalab/released/, loaded as it
loads it), on the same grey inputs as every neutral@MODEL, into reports/neutral/released."""

from chromalab.core import config, paths
from chromalab.core.errors import exit_on_user_error
from chromalab.core.logs import setup_stage


@exit_on_user_error
def main():
    setup_stage()
    neutral_params = config.section(config.load_params(), "neutral")
    from chromalab.scoring.neutral import NEUTRAL, neutral
    from chromalab.serving.release import read_release

    path, _ = read_release()  # its sha256 checked, as `chromalab colorize` checks it
    neutral(config.RELEASED, neutral_params, paths.MODELS, paths.PREPARED, paths.RAW, NEUTRAL / config.RELEASED,
            checkpoint_path=path)


if __name__ == "__main__":
    main()
