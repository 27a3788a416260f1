"""DVC stage `download`: copy the configured source's photos into data/raw with a manifest."""

from chromalab import config, paths
from chromalab.download import download
from chromalab.errors import exit_on_user_error
from chromalab.logs import setup_stage


@exit_on_user_error
def main():
    setup_stage()
    params = config.load_params()
    download(config.section(params, "data"), paths.RAW)


if __name__ == "__main__":
    main()
