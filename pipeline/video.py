"""DVC stage `video`: the film stabiliser measured on a made clip with the released model, against
per-frame colorization (video/check.py) -> reports/video/metrics.json and strip.jpg."""

from chromalab.core import config
from chromalab.core.errors import exit_on_user_error
from chromalab.core.logs import setup_stage


@exit_on_user_error
def main():
    setup_stage()
    params = config.section(config.load_params(), "video")
    import torch

    from chromalab.colorizing import checkpoint
    from chromalab.colorizing.colorize import FullResolution
    from chromalab.serving.release import read_release
    from chromalab.video.check import video_check

    path, _ = read_release()  # the released model, its sha256 checked, as `chromalab colorize` loads it
    colorizer, cfg = checkpoint.load(path, device=torch.device("cpu"))
    video_check(params, FullResolution(colorizer, int(cfg.get("working_size") or cfg["image_size"]), torch.device("cpu")))


if __name__ == "__main__":
    main()
