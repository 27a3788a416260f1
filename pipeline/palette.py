"""DVC stage `palette`: the k-means palette and Zhang's gamut bins in data/palette, and
reports/palette.png."""

from chromalab.core import config, paths
from chromalab.core.errors import exit_on_user_error
from chromalab.core.logs import setup_stage
from chromalab.data.palette import build_palette


@exit_on_user_error
def main():
    setup_stage()
    params = config.load_params()
    build_palette(config.section(params, "palette"), paths.PREPARED, paths.PALETTE, paths.REPORTS / "palette.png")


if __name__ == "__main__":
    main()
