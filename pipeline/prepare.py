"""DVC stage `prepare`: raw photos -> Lab arrays of prepare.size in data/prepared, split by photo."""

from chromalab import config, paths
from chromalab.errors import exit_on_user_error
from chromalab.logs import setup_stage
from chromalab.prepare import prepare


@exit_on_user_error
def main():
    setup_stage()
    params = config.load_params()
    prepare(config.section(params, "prepare"), paths.RAW, paths.PREPARED)


if __name__ == "__main__":
    main()
