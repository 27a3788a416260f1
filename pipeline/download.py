"""DVC stage `download`: copy the configured source's photos into data/raw with a manifest."""

from chromalab.core import config, paths
from chromalab.core.errors import exit_on_user_error
from chromalab.core.logs import setup_stage
from chromalab.data.download import download


@exit_on_user_error
def main():
    setup_stage()
    params = config.load_params()
    download(config.section(params, "data"), paths.RAW)


if __name__ == "__main__":
    main()
