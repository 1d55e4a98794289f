"""The rating page in a real browser (Playwright driving Debian's chromium, headless): a rater opens the link,
answers five items by mouse and by keyboard, reloads in the middle and resumes, finishes; the study holds
exactly those judgments; no response the browser received names a system; outputs holding `<script>` and
`<img onerror>` show as text and run nothing."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install lmforge[serve])")

from lmforge.humaneval import Study, create_study  # noqa: E402
from lmforge.humaneval.app import create_app  # noqa: E402
from lmforge.serve import BackgroundServer  # noqa: E402

HOSTILE = '<script>window.pwned = 1</script> el gato {i} <img src="x" onerror="window.pwned = 2">'


def test_a_rater_answers_by_mouse_and_keyboard_resumes_after_reload_and_finishes(page, tmp_path):
    from playwright.sync_api import expect  # the `page` fixture skipped (or failed under CI) without it

    study = create_study(
        tmp_path / "s.db",
        name="browser",
        outputs={
            "sysplain": [f"the cat {i}" for i in range(5)],
            "syshostile": [HOSTILE.format(i=i) for i in range(5)],
        },
        sources=[f"le chat {i}" for i in range(5)],
        raters=1,
        per_item=1,
        criteria=["fluency"],
    )
    token = next(iter(study.raters().values()))
    received: list[str] = []
    dialogs: list[str] = []

    def record(route):  # every response the browser gets, kept for the check below
        response = route.fetch()
        received.append(route.request.url + "\n" + str(response.headers) + "\n" + response.text())
        route.fulfill(response=response)

    with BackgroundServer(create_app(study)) as server:
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.route("**/*", record)
        page.goto(f"{server.url}/r/{token}")
        progress = page.locator("#progress")
        expect(progress).to_have_text("0 of 5 answered")

        shown = [page.locator("#output1").text_content(), page.locator("#output2").text_content()]
        assert any(text == HOSTILE.format(i=i) for text in shown for i in range(5))  # shown as text
        assert page.locator("#outputs img, #outputs script").count() == 0
        assert page.evaluate("window.pwned") is None

        # 1: by mouse
        page.get_by_role("button", name="Output 1").click()
        page.locator("label[for='fluency-0-4']").click()
        page.locator("label[for='fluency-1-2']").click()
        page.locator("#send").click()
        expect(progress).to_have_text("1 of 5 answered")
        # 2: by keyboard
        for key in ("ArrowRight", "5", "3", "Enter"):
            page.keyboard.press(key)
        expect(progress).to_have_text("2 of 5 answered")
        # 3: by mouse, then reload mid-way through item 4 (a choice made, not sent)
        page.get_by_role("button", name="Tie").click()
        page.locator("label[for='fluency-0-1']").click()
        page.locator("label[for='fluency-1-1']").click()
        page.locator("#send").click()
        expect(progress).to_have_text("3 of 5 answered")
        page.keyboard.press("ArrowLeft")
        page.reload()
        expect(progress).to_have_text("3 of 5 answered")
        assert page.locator("#send").is_disabled()  # the unsent choice is gone: answer item 4 again
        # 4 and 5: by keyboard
        for key in ("b", "2", "2", "Enter"):
            page.keyboard.press(key)
        expect(progress).to_have_text("4 of 5 answered")
        for key in ("t", "4", "5", "Enter"):
            page.keyboard.press(key)
        expect(page.locator("#done")).to_be_visible()
        expect(progress).to_have_text("5 of 5 answered")
        assert page.evaluate("window.pwned") is None and dialogs == []
        page.close()

    with Study(tmp_path / "s.db") as reopened:
        stored = [(j["choice"], j["ratings"]["fluency"]) for j in reopened.judgments()]
    assert stored == [
        ("left", [4, 2]),
        ("right", [5, 3]),
        ("tie", [1, 1]),
        ("both_bad", [2, 2]),
        ("tie", [4, 5]),
    ]
    assert len(received) >= 10
    for text in received:
        assert "sysplain" not in text and "syshostile" not in text
    study.close()
