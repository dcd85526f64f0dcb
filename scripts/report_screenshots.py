"""Regenerate the report screenshots under docs/ from the example profiles in docs/report-examples/.

Each profile goes through `advisor recommend --format html` (the report as one file, as the server renders it, with
its what-if) and Debian's Chromium takes a full-page screenshot: docs/report-<profile>.png. They are pictures for
the README, not references: nothing compares them pixel for pixel.

    .venv/bin/python scripts/report_screenshots.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "report-examples"
CHROMIUM = "/usr/bin/chromium"
WIDTH = 900


def main() -> int:
    from playwright.sync_api import sync_playwright

    advisor = Path(sys.executable).parent / "advisor"
    with tempfile.TemporaryDirectory() as scratch, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": 1000})
            for profile in sorted(EXAMPLES.glob("*.json")):
                html = Path(scratch) / f"{profile.stem}.html"
                subprocess.run(
                    [str(advisor), "recommend", str(profile), "--format", "html", "--output", str(html)],
                    check=True,
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                )
                page.goto(html.as_uri())
                target = ROOT / "docs" / f"report-{profile.stem}.png"
                page.screenshot(path=target, full_page=True)
                sys.stdout.write(f"wrote {target.relative_to(ROOT)}\n")
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
