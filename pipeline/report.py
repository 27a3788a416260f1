"""DVC stage `report`: compare every model in the league (plus the grey baseline) in
reports/metrics.json, reports/comparison.md and reports/index.html."""

from chromalab import config
from chromalab.errors import exit_on_user_error, setup_logging
from chromalab.report import GREY, build_report


@exit_on_user_error
def main():
    setup_logging()
    params = config.load_params()
    names = config.league(params) + [GREY]
    build_report(names)


if __name__ == "__main__":
    main()
