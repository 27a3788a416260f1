"""DVC stage `train@MODEL`: train one model of the league into data/models/MODEL.

With train.nproc > 1 the stage relaunches itself under torchrun (one process per GPU, or CPU
processes with gloo). A stage killed part-way resumes from data/resume/MODEL when run again.
"""

import argparse
import sys

from chromalab.core import config, paths
from chromalab.core.errors import exit_on_user_error
from chromalab.core.logs import setup_stage


@exit_on_user_error
def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", help="a name under `models` in params.yaml")
    name = parser.parse_args().model
    setup_stage()
    params = config.load_params()
    train_params = config.train_params_for(params, name)
    model_params = config.model_params(params, name)
    from chromalab.core import tracking
    from chromalab.training import distributed  # torch is imported only once the params are known to be good

    if train_params.nproc > 1 and not distributed.launched_by_torchrun():
        return distributed.relaunch_with_torchrun(train_params.nproc, __file__, [name])
    if tracking.enabled():
        tracking.check_reachable()  # an unreachable MLflow server fails now, not after training
    from chromalab.training.train import train

    train(name, model_params, train_params, paths.PREPARED, paths.PALETTE, paths.MODELS / name,
          paths.TRAIN_REPORTS / name / "history.csv",
          logged_params={"train": config.as_dict(train_params), "model": config.as_dict(model_params)},
          resume_path=paths.RESUME / name / "state.pt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
