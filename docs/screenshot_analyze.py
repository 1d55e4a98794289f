"""The screenshot of report.html in docs/analyze.md, taken from a real report in headless Chromium (the browser
of the page tests, tests/browser.py) opened from the file, as a reader would.

    lmforge analyze --demo                          # runs/analyze-demo/report.html
    python docs/screenshot_analyze.py --report runs/analyze-demo/report.html

Writes docs/images/analyze-report.png (atomically): the top of the page, `--height` pixels of it. Needs the
dev extra (playwright) and Debian's chromium (`apt-get install chromium`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lmforge.io import write_bytes

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from browser import ARGUMENTS, CHROMIUM  # noqa: E402  (the page tests' browser and its flags)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--report", default="runs/analyze-demo/report.html", help="a report.html to picture")
    parser.add_argument("--out", default=str(HERE / "images" / "analyze-report.png"), help="the PNG to write")
    parser.add_argument("--width", type=int, default=1000, help="window width in CSS pixels (default 1000)")
    parser.add_argument(
        "--height", type=int, default=1500, help="how much of the page, from the top (default 1500)"
    )
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    report = Path(args.report).resolve()
    if not report.is_file():
        parser.error(f"--report {report}: no such file; run `lmforge analyze --demo` first")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGUMENTS)
        page = browser.new_page(viewport={"width": args.width, "height": args.height})
        page.goto(report.as_uri())
        page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
        picture = page.screenshot(full_page=False)
        browser.close()
    write_bytes(args.out, picture)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
