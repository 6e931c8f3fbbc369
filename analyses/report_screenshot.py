"""A full-page screenshot of `papo report`, rendered by the system's headless Chromium.

    python analyses/report_screenshot.py                          # build small data, then render
    python analyses/report_screenshot.py --dataset DS --run RUN   # render a report of your data

1. Data (without --dataset): Meta-World rollouts of pick-place-v3 and reach-v3 (2 groups x 4
   each, 100 steps, seed 0: pick-place holds groups with both outcomes, reach only successes),
   then `papo segment`, `papo branch --k 2 --limit 4`, `papo estimate --no-dowhy` and
   `papo export-weights`; and (without --run) a two-iteration `papo train --config` run from a
   policy cloned from two reach-v3 demos. Everything goes under --work (default a temp folder).
2. `papo report DATASET --run RUN --out WORK/report.html`.
3. Chromium (/usr/bin/chromium via /usr/bin/chromedriver; selenium never downloads a driver)
   loads the file, every image must have decoded (naturalWidth > 0), and the whole page is
   captured with the DevTools Page.captureScreenshot (captureBeyondViewport) into --png
   (default analyses/figures/report.png).
"""

from __future__ import annotations

import argparse
import base64
import sys
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from papo_data.cli import main as papo

HERE = Path(__file__).resolve().parent
WIDTH = 1100  # CSS px of the browser window: the page's column is 1040 px wide


def build_data(work: Path) -> Path:
    dataset = work / "ds"
    steps = [
        ["collect", dataset, "--tasks", "pick-place-v3,reach-v3", "--groups", 2,
         "--group-size", 4, "--max-steps", 100, "--seed", 0, "--workers", 1],
        ["segment", dataset],
        ["branch", dataset, "--k", 2, "--limit", 4, "--workers", 1],
        ["estimate", dataset, "--no-dowhy"],
        ["export-weights", dataset],
    ]  # fmt: skip
    for verb in steps:
        _papo(*verb)
    return dataset


def build_run(work: Path) -> Path:
    demos, init, run = work / "demos", work / "bc.pt", work / "run"
    _papo("collect", demos, "--tasks", "reach-v3", "--groups", 2, "--group-size", 1,
          "--noise", 0, "--delay-prob", 0, "--max-steps", 60)  # fmt: skip
    _papo("train", "--bc", demos, "--out", init, "--demos-per-task", 2, "--epochs", 40)
    config = work / "run.toml"
    config.write_text(
        f'init = "{init}"\nmode = "papo"\niterations = 2\ngroups_per_task = 2\nmax_steps = 40\n'
        "[grpo]\ngroup_size = 4\nmini_batch_episodes = 4\n"
        '[branch]\nk = 2\nlimit = 3\ninterventions = ["noise"]\n'
    )
    _papo("train", "--config", config, "--run", run)
    return run


def _papo(*args: object) -> None:
    code = papo([str(a) for a in args])
    if code != 0:
        sys.exit(f"papo {args[0]} failed with exit code {code}")


def chromium(profile: Path) -> webdriver.Chrome:
    """Headless system Chromium with its system driver: nothing is downloaded or phoned home."""
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}", f"--window-size={WIDTH},900"):  # fmt: skip
        options.add_argument(arg)
    service = Service(executable_path="/usr/bin/chromedriver")
    return webdriver.Chrome(options=options, service=service)


def screenshot(html: Path, png: Path) -> int:
    """Render `html` and write a full-page PNG; returns the page height in CSS px."""
    with tempfile.TemporaryDirectory() as profile:
        driver = chromium(Path(profile))
        try:
            driver.get(html.resolve().as_uri())
            broken = driver.execute_script(
                "return [...document.images].filter(i => !i.complete || i.naturalWidth === 0)"
                ".map(i => i.alt)"
            )
            if broken:
                sys.exit(f"images that did not decode: {broken}")
            height = int(driver.execute_script("return document.documentElement.scrollHeight"))
            shot = full_page_png(driver, height)
        finally:
            driver.quit()
    png.parent.mkdir(parents=True, exist_ok=True)
    png.write_bytes(shot)
    return height


def full_page_png(driver: webdriver.Chrome, height: int) -> bytes:
    """The whole page, `height` CSS px tall, as PNG bytes (DevTools captureBeyondViewport)."""
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {"format": "png", "captureBeyondViewport": True,
         "clip": {"x": 0, "y": 0, "width": WIDTH, "height": height, "scale": 1}},
    )  # fmt: skip
    return base64.b64decode(shot["data"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, help="dataset to report (default: build one)")
    parser.add_argument("--run", type=Path, help="training run folder (default: train one)")
    parser.add_argument("--work", type=Path, help="folder for built data and the HTML")
    parser.add_argument("--png", type=Path, default=HERE / "figures" / "report.png")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="papo-report-"))
    work.mkdir(parents=True, exist_ok=True)
    dataset = args.dataset or build_data(work)
    run = args.run or build_run(work)
    html = work / "report.html"
    _papo("report", dataset, "--run", run, "--out", html)
    height = screenshot(html, args.png)
    print(f"{args.png}: {WIDTH} x {height} CSS px screenshot of {html}")


if __name__ == "__main__":
    main()
