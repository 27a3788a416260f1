"""Films: `chromalab colorize film.mp4` keeps frames, rate, size, timestamps and audio; the
stabiliser's effect measured on the made clip (a pan over a real photo, a cut, a pan over another);
`video-score`; bad films are one line, exit 1, nothing left at the output."""

import json
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from chromalab import cli
from chromalab.core.config import VideoParams
from chromalab.video import clip, container
from chromalab.video.score import FilmScorer
from chromalab.video.stabilise import Stabiliser

WIDTH, HEIGHT, BEFORE_CUT = 160, 120, 12


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clip")
    colour, grey, cut = clip.make_clip(folder, WIDTH, HEIGHT, fps=24, frames=BEFORE_CUT)
    return folder, colour, grey, cut


def _packets(path, kind):
    import av

    with av.open(str(path)) as c:
        stream = getattr(c.streams, kind)[0]
        return [(p.pts, bytes(p)) for p in c.demux(stream) if p.dts is not None]


def _pts_seconds(path):
    return [float(pts * tb) for _, pts, tb in container.read_frames(path)]


def test_the_made_clip_has_its_frames_rate_audio_and_a_grey_twin(made):
    folder, colour, grey, cut = made
    a, b = container.probe(colour), container.probe(grey)
    assert (a.width, a.height, a.fps, a.frames, a.has_audio) == (WIDTH, HEIGHT, 24, cut + cut * 2 // 3, True)
    assert (b.width, b.height, b.frames, b.has_audio) == (a.width, a.height, a.frames, True)
    frame = next(container.read_frames(grey))[0].astype(int)
    assert np.abs(frame[..., 0] - frame[..., 1]).max() <= 2  # grey: R = G = B up to the codec's rounding


def test_colorize_a_film_keeps_frames_rate_size_timestamps_and_audio(made, tmp_path, capsys):
    folder, colour, grey, cut = made
    assert cli.main(["colorize", str(grey), "-o", str(tmp_path / "out")]) == 0
    out = tmp_path / "out" / "clip_grey.mp4"
    info, source = container.probe(out), container.probe(grey)
    assert (info.width, info.height, info.fps, info.frames, info.has_audio) == \
        (source.width, source.height, source.fps, source.frames, True)
    assert _pts_seconds(out) == pytest.approx(_pts_seconds(grey), abs=1e-3)
    assert _packets(out, "audio") == _packets(grey, "audio")  # the audio copied, packet for packet
    said = capsys.readouterr().out
    assert f"cuts at frame {cut}" in said and "audio copied" in said and "1 of 1 film(s)" in said
    first = next(container.read_frames(out))[0].astype(int)
    assert np.abs(first[..., 0] - first[..., 2]).mean() > 1  # colour was painted
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["clip_grey.mp4"]


def test_the_stabiliser_halves_the_temporal_error_at_no_psnr_cost_and_resets_at_the_cut(tmp_path):
    from chromalab.serving import model_choice
    from chromalab.video.check import video_check

    runner, _ = model_choice.load(None, None, "cpu")
    params = VideoParams(clip_width=WIDTH, clip_height=HEIGHT, clip_frames=BEFORE_CUT)
    result = video_check(params, runner, tmp_path / "reports", tmp_path / "clip")
    assert result["cuts_found"] == [BEFORE_CUT] and result["carried_across_cut"] == 0.0
    assert result["warp_error_cut"] >= 0.5 and result["psnr_cost"] <= 0.2
    assert json.loads((tmp_path / "reports" / "metrics.json").read_text()) == result
    strip = Image.open(tmp_path / "reports" / "strip.jpg")
    assert strip.size == (5 * WIDTH + 4 * 4, 4 * HEIGHT + 3 * 4)
    off = video_check(VideoParams(strength=0.0, clip_width=WIDTH, clip_height=HEIGHT, clip_frames=BEFORE_CUT),
                      runner, tmp_path / "off", tmp_path / "clip_off")
    assert off["warp_error_cut"] == 0.0 and off["psnr_cost"] == 0.0


def test_strength_zero_passes_the_networks_colour_and_a_cut_starts_afresh():
    first, second = clip.shipped_photos()
    views = clip.pan(first, 10, 96, 64) + clip.pan(second, 8, 96, 64)
    rng = np.random.default_rng(0)
    stabiliser, steady = Stabiliser(VideoParams(strength=0.0)), Stabiliser(VideoParams())
    from chromalab.core import color

    for i, view in enumerate(views):
        L = color.rgb_to_lab(view)[..., 0]
        ab = rng.normal(0, 20, L.shape + (2,)).astype(np.float32)  # a network that flickers wildly
        out, cut = stabiliser(L, ab)
        assert np.array_equal(out, ab)
        held, cut = steady(L, ab)
        assert cut == (i == 10)
        if i in (0, 10):  # the first frame of each shot is the network's own
            assert np.array_equal(held, ab)
        else:
            assert np.abs(held).mean() < 0.8 * np.abs(ab).mean()  # carried colour averages the noise out
    assert steady.cuts == [10] and stabiliser.cuts == [10]


def test_a_static_film_scores_no_temporal_error():
    first, _ = clip.shipped_photos()
    frame = np.asarray(Image.fromarray(first).resize((96, 96)))
    scorer = FilmScorer()
    for _ in range(3):
        scorer.add(frame, frame)
    summary = scorer.score.summary()
    assert summary["warp_error"] == pytest.approx(0, abs=1e-4) and summary["flicker"] == pytest.approx(0, abs=1e-4)
    assert summary["cuts"] == [] and summary["psnr"] > 60


def test_video_score_reads_a_film_and_its_original(made, tmp_path, capsys):
    folder, colour, grey, cut = made
    report = tmp_path / "score.json"
    assert cli.main(["video-score", str(grey), "--original", str(colour), "--json", str(report)]) == 0
    said = capsys.readouterr().out
    assert "warped temporal error" in said and "PSNR against the original" in said
    figures = json.loads(report.read_text())
    assert figures["frames"] == container.probe(colour).frames and figures["cuts"] == [cut]
    assert figures["warp_error"] < 0.1  # a grey film holds its (no) colour perfectly still
    assert figures["truth_warp_error"] > figures["warp_error"] and figures["delta_colorfulness"] > 10


def test_video_score_refuses_a_still_image_as_a_film_or_an_original(made, tmp_path, capsys):
    from PIL import Image

    _, colour, grey, _ = made
    photo = tmp_path / "still.png"
    Image.fromarray(clip.grey(clip.shipped_photos()[0])).save(photo)
    for argv in (["video-score", str(photo)], ["video-score", str(grey), "--original", str(photo)]):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{photo}: a still image, not a film" in err


def test_a_folder_of_frames_becomes_a_film_at_the_given_rate(tmp_path, capsys):
    first, _ = clip.shipped_photos()
    frames = clip.pan(first, 5, 64, 48)
    clip.write_frames([clip.grey(f) for f in frames], tmp_path / "reel")
    assert cli.main(["-q", "colorize", str(tmp_path / "reel"), "--frames", "--fps", "12.5", "-o",
                     str(tmp_path / "out"), "--no-stabilise"]) == 0
    info = container.probe(tmp_path / "out" / "reel.mp4")
    assert (info.width, info.height, info.fps, info.frames, info.has_audio) == (64, 48, Fraction(25, 2), 5, False)
    assert capsys.readouterr().out == ""  # -q: no progress, no summary


def _truncated_mkv(folder, grey):
    whole = folder / "whole.mkv"
    with container.FilmWriter(whole, WIDTH, HEIGHT, Fraction(24)) as writer:
        for rgb, _, _ in container.read_frames(grey):
            writer.write(rgb)
    data = whole.read_bytes()
    (folder / "truncated.mkv").write_bytes(data[: len(data) // 2])
    return folder / "truncated.mkv", "truncated"


def _junk(folder, grey):
    (folder / "junk.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, np.uint8).tobytes())
    return folder / "junk.mp4", "not a readable video file"


def _audio_only(folder, grey):
    clip._write_audio(folder / "tone.mp4", 0.5)
    return folder / "tone.mp4", "has no video stream"


def _zero_frames(folder, grey):
    import av

    out = av.open(str(folder / "empty.mkv"), "w")
    stream = out.add_stream("libx264", rate=24)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    out.start_encoding()  # the header, then no frame
    out.close()
    return folder / "empty.mkv", "not a readable video file"


def _unknown_codec(folder, grey):
    (folder / "odd.mp4").write_bytes(grey.read_bytes().replace(b"avc1", b"zzzz"))
    return folder / "odd.mp4", "codec"


@pytest.mark.parametrize("make", [_truncated_mkv, _junk, _audio_only, _zero_frames, _unknown_codec])
def test_a_bad_film_is_one_line_exit_1_and_nothing_left_behind(made, tmp_path, capsys, make):
    bad, words = make(tmp_path, made[2])
    out = tmp_path / "out"
    assert cli.main(["-q", "colorize", str(bad), "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {bad}") and words in err[0], err
    assert list(out.iterdir()) == []  # no half-written film, no temporary file


@pytest.mark.parametrize("args, words", [
    (["--strength", "1"], "--strength 1.0: must be at least 0 and below 1"),
    (["--cut-fraction", "0"], "--cut-fraction 0.0"),
    (["--crf", "60"], "--crf 60"),
    (["--fps", "-2"], "--fps -2.0"),
    (["--compare"], "--compare: for photos only"),
    (["--confidence"], "--confidence: for photos only"),
])
def test_film_options_out_of_range_are_usage_errors(made, tmp_path, capsys, args, words):
    assert cli.main(["colorize", str(made[2]), "-o", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err
    assert not (tmp_path / "out").exists()


def test_the_cli_defaults_are_params_yaml_video_section():
    from pathlib import Path

    from chromalab.core import config

    repo = Path(__file__).resolve().parents[1]
    assert config.section(config.load_params(repo / "params.yaml"), "video") == VideoParams()


def test_video_bench_reports_the_median_of_its_interleaved_runs(tmp_path):
    import statistics
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "video_bench.json"
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "video_bench.py"
    subprocess.run([sys.executable, str(script), "--width", str(WIDTH), "--height", str(HEIGHT), "--frames", "6",
                    "--repeats", "3", "--out", str(out)], check=True, capture_output=True)
    result = json.loads(out.read_text())
    assert result["clip"].startswith(f"{WIDTH} x {HEIGHT}, 10 frames")
    for mode in ("stabilised", "per_frame"):
        runs = result[f"colorize_{mode}_fps_runs"]
        assert len(runs) == 3 and all(fps > 0 for fps in runs)
        assert result[f"colorize_{mode}_fps"] == round(statistics.median(runs), 2)
