"""The report as a person sees it: reports/index.html rendered by headless Chromium.

A copy of the page with a few lines of script appended reports, once everything has loaded, which
images failed (a browser's own verdict: complete and naturalWidth > 0), how many league rows there
are, and the row order after a click on the PSNR header (the inline sort); `--dump-dom` prints it.
A screenshot of the real page is saved beside it as reports/screenshot.png.
"""

import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from chromalab.core import timings
from chromalab.report.report import build_report
from helpers import img_srcs, write_eval

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium on PATH (Debian: apt-get install chromium; .ci/run installs it)")

NAMES = ["unet", "tiny", "grey"]
CHECK = """
<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const names = () => [...document.querySelectorAll("table.league tbody tr")].map(r => r.cells[0].dataset.sort);
  const result = {
    images: images.length,
    broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute("src")),
    rows: names(),
  };
  const psnr = [...document.querySelectorAll("table.league th")].find(th => th.textContent.startsWith("PSNR"));
  psnr.click();
  result.ascending = names();
  psnr.click();
  result.descending = names();
  const out = document.createElement("pre");
  out.id = "browser-check";
  out.textContent = JSON.stringify(result);
  document.body.appendChild(out);
});
</script>
"""


def chromium(*args, timeout=120):
    flags = ["--headless", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=10000"]
    if os.geteuid() == 0:
        flags.append("--no-sandbox")  # Chromium refuses to run as root inside its sandbox
    result = subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def browser_check(reports) -> dict:
    """Render a copy of index.html (beside it, so relative links resolve) with the check appended."""
    page = (reports / "index.html").read_text()
    probe = reports / "browser-check.html"
    probe.write_text(page.replace("</body>", CHECK + "</body>"))
    dom = chromium("--dump-dom", probe.as_uri())
    found = re.search(r'<pre id="browser-check">(.*?)</pre>', dom, re.S)
    assert found, "the check script did not run:\n" + dom[-1000:]
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


@pytest.fixture
def reports(tmp_path):
    reports = tmp_path / "reports"
    write_eval(reports, dict(zip(NAMES, NAMES)))
    for folder in ("grey/photos", "unet/photos", "grey/photos_truth"):  # full-size photos too
        (reports / "eval" / folder).mkdir(parents=True)
        Image.new("RGB", (300, 200), (200, 120, 40)).save(reports / "eval" / folder / "00.png")
    for name, psnr in (("unet", 21.3), ("grey", 19.9)):  # their scores and unet's speed on those photos
        path = reports / "eval" / name / "metrics.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "photos_psnr": psnr,
                                    "photos_delta_colorfulness": 9.5}))
    timings.write(reports / "eval" / "unet", {"photos_seconds_per_megapixel": 0.12})
    build_report(NAMES, reports, all_params={"train": {"epochs": 3}})
    return reports


def test_every_image_loads_and_the_table_has_a_row_per_model(reports):
    result = browser_check(reports)
    assert result["broken"] == []
    # hero; 3 test images x (input, 2 models, truth); 1 photo x (input, unet, truth); quality
    # against speed; the error CDF and 2 training plots; the palette.
    assert result["images"] == len(img_srcs((reports / "index.html").read_text())) == 1 + 12 + 3 + 1 + 3 + 1
    assert result["rows"] == NAMES
    # The inline sort: PSNR ascending (grey 22.1 < tiny 23.9 < unet 24.5), then descending.
    assert result["ascending"] == ["grey", "tiny", "unet"]
    assert result["descending"] == ["unet", "tiny", "grey"]

    shot = reports / "screenshot.png"
    chromium(f"--screenshot={shot}", "--window-size=1400,2400", (reports / "index.html").as_uri())
    with Image.open(shot) as img:
        assert img.size == (1400, 2400)
        colours = np.unique(np.asarray(img.convert("RGB").resize((64, 64))).reshape(-1, 3), axis=0)
        assert len(colours) > 50  # a page with pictures, not a blank


def test_the_browser_check_catches_a_broken_image(reports):
    (reports / "curves" / "error_cdf.svg").write_text("not an svg")
    (reports / "eval" / "tiny" / "gallery" / "01.png").unlink()
    assert sorted(browser_check(reports)["broken"]) == ["curves/error_cdf.svg", "eval/tiny/gallery/01.png"]
