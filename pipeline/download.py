"""DVC stage `download`: copy the configured source's photos into data/raw with a manifest."""

from chromalab import config, paths
from chromalab.download import download
from chromalab.errors import exit_on_user_error, setup_logging


@exit_on_user_error
def main():
    setup_logging()
    params = config.load_params()
    download(config.section(params, "data"), paths.RAW)


if __name__ == "__main__":
    main()
