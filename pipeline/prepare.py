"""DVC stage `prepare`: raw photos -> Lab arrays of prepare.size in data/prepared, split by photo."""

from chromalab.core import config, paths
from chromalab.core.errors import exit_on_user_error
from chromalab.core.logs import setup_stage
from chromalab.data.prepare import prepare


@exit_on_user_error
def main():
    setup_stage()
    params = config.load_params()
    prepare(config.section(params, "prepare"), paths.RAW, paths.PREPARED)


if __name__ == "__main__":
    main()
