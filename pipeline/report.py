"""DVC stage `report`: compare every model in the league (plus the grey baseline), recommend one and
register it in MLflow as `champion`; writes reports/metrics.json, comparison.md, index.html,
hero.png and curves/."""

from chromalab.core import config
from chromalab.core.config import GREY
from chromalab.core.errors import exit_on_user_error
from chromalab.core.logs import setup_stage
from chromalab.report.report import build_report


@exit_on_user_error
def main():
    setup_stage()
    params = config.load_params()
    names = config.league(params) + [GREY]
    build_report(names, params=config.section(params, "report"), all_params=params)


if __name__ == "__main__":
    main()
