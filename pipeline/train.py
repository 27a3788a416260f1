"""DVC stage `train@MODEL`: train one model of the league into data/models/MODEL."""

import argparse

from chromalab import config, paths
from chromalab.errors import exit_on_user_error, setup_logging


@exit_on_user_error
def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", help="a name under `models` in params.yaml")
    name = parser.parse_args().model
    setup_logging()
    params = config.load_params()
    train_params = config.section(params, "train")
    model_params = config.model_params(params, name)
    from chromalab.train import train  # torch is imported only once the params are known to be good

    train(name, model_params, train_params, paths.PREPARED, paths.PALETTE, paths.MODELS / name,
          paths.TRAIN_REPORTS / name / "history.csv",
          logged_params={"train": config.as_dict(train_params), "model": config.as_dict(model_params)})


if __name__ == "__main__":
    main()
