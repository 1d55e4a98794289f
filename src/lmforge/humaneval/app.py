"""The collection server: a FastAPI app over one study file. The HTTP layer only parses, calls `Study` and
serialises; what a rater sees never names a system or an item (checks look like any other item).

    GET  /r/{token}                   the rating page (404 for an unknown token, the same as any unknown path)
    GET  /api/r/{token}/next          {task, criteria, progress: {answered, total}, item: {assignment, source,
                                      outputs: [text 1, text 2]} or null when all are answered}
    POST /api/r/{token}/judgments     {assignment, key, choice?, ratings?: {criterion: [1-5, 1-5]}, seconds?}
                                      → the same as /next, with `stored` (false: that key was stored already)
    GET  /static/rate.js, rate.css    the page's script and style;  GET /health

Every response carries a Content-Security-Policy that allows only the app's own script and style, no
Referer (the token is in the URL), and `Cache-Control: no-store`. Nothing of the request (address, user
agent) is logged or stored.
"""

from __future__ import annotations

import math

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from lmforge.humaneval.page import PAGE, SCRIPT, STYLE
from lmforge.humaneval.study import JudgmentError, Study

HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
MAX_BODY = 64 * 1024


def create_app(study: Study) -> FastAPI:
    app = FastAPI(title="lmforge human evaluation", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.update(HEADERS)
        return response

    def rater_of(token: str) -> str:
        rater = study.rater_of(token)
        if rater is None:
            raise HTTPException(404)  # the same body as an unknown path: reveals nothing
        return rater

    def state(rater: str) -> dict:
        answered, total = study.progress(rater)
        return {
            "task": study.task,
            "criteria": study.criteria if study.task != "pairwise" else [],
            "progress": {"answered": answered, "total": total},
            "item": study.next_for(rater),
        }

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/static/rate.js")
    def script() -> Response:
        return Response(SCRIPT, media_type="text/javascript; charset=utf-8")

    @app.get("/static/rate.css")
    def style() -> Response:
        return Response(STYLE, media_type="text/css; charset=utf-8")

    @app.get("/r/{token}")
    def page(token: str) -> HTMLResponse:
        rater_of(token)
        return HTMLResponse(PAGE)

    @app.get("/api/r/{token}/next")
    def next_item(token: str) -> dict:
        return state(rater_of(token))

    @app.post("/api/r/{token}/judgments")
    async def judge(token: str, request: Request) -> JSONResponse:
        rater = await run_in_threadpool(rater_of, token)
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return JSONResponse({"detail": "the request body is too large"}, 413)
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"detail": "the body is not JSON"}, 400)
        if not isinstance(body, dict):
            return JSONResponse({"detail": "the body must be a JSON object"}, 422)
        assignment = body.get("assignment")
        if not isinstance(assignment, int) or isinstance(assignment, bool):
            return JSONResponse({"detail": "assignment: the item's number is required"}, 422)
        seconds = body.get("seconds")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not math.isfinite(seconds):
            seconds = None
        try:
            stored = await run_in_threadpool(
                study.record,
                rater,
                assignment,
                body.get("key"),
                choice=body.get("choice"),
                ratings=body.get("ratings"),
                seconds=seconds,
            )
        except JudgmentError as exc:
            return JSONResponse({"detail": str(exc)}, exc.status)
        return JSONResponse({"stored": stored, **await run_in_threadpool(state, rater)})

    return app
