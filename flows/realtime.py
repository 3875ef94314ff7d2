"""Real-time classification (ClassifyDocument): one document per request over HTTP.

The answer comes from ``classify_texts``, the same code path as the batch job, so a document
gets the same Classes/Labels in both. Bad input always gets a 4xx JSON error, never a 500.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from classifier_core.config import MAX_REALTIME_TEXT_BYTES
from classifier_core.inference import classify_texts

if TYPE_CHECKING:  # (served through its Scorer, a model needs no scikit-learn)
    from classifier_core.model import TextClassifier
    from classifier_core.scorer import Scorer


class ClassifyDocumentRequest(BaseModel):
    Text: str = Field(description="The document, UTF-8, at most 10 KB (configurable).")


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"ErrorCode": code, "Message": message})


def _problem(error: dict) -> str:
    """One request validation error as "found ..." text: where in the body, and what is wrong."""
    where = ".".join(map(str, error["loc"]))
    if error["type"] == "json_invalid":  # loc is ("body", character position)
        detail = (error.get("ctx") or {}).get("error")
        return f"invalid JSON at character {error['loc'][-1]} (JSON decode error{': ' + detail if detail else ''})"
    if error["type"] == "missing" and tuple(error["loc"]) == ("body",):
        return "an empty body"
    return f"{where}: {error['msg']}"


class _MicroBatcher:
    """Classifies the texts of requests that arrive together in one ``classify_texts`` call.

    A request's text waits only for the current turn of the event loop: the first one schedules
    a flush with ``call_soon``, which runs after the other requests already read in this turn.
    A call has a fixed cost: one text alone took ~380 us here (2026-12-02), each of a batch of 64
    30-60 us.
    A document's answer does not depend on the batch it is in (every row is scored alone).
    """

    def __init__(self, model: TextClassifier | Scorer) -> None:
        self._model = model
        self._pending: list[tuple[str, asyncio.Future]] = []

    async def classify(self, text: str) -> dict:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((text, future))
        if len(self._pending) == 1:
            asyncio.get_running_loop().call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        try:
            results = classify_texts(self._model, [text for text, _ in batch])
        except Exception as error:  # a model failure answers every waiting request, never hangs them
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), result in zip(batch, results):
            if not future.done():  # the client may have gone away
                future.set_result(result)


def create_app(model: TextClassifier | Scorer, info: dict, max_text_bytes: int = MAX_REALTIME_TEXT_BYTES) -> FastAPI:
    """The ASGI app serving one loaded classifier.

    Args:
        model: the classifier to serve: its Scorer (classifier_core.scorer), or the whole model.
        info: name and version shown by /health.
        max_text_bytes: the largest Text accepted, in UTF-8 bytes.
    """
    app = FastAPI(title="docclass real-time classification", version="1")
    batcher = _MicroBatcher(model)

    @app.exception_handler(RequestValidationError)
    def _invalid(request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(_problem(e) for e in exc.errors())
        content_type = request.headers.get("content-type", "")
        if "json" not in content_type.lower():  # e.g. curl -d without -H: the body was never read as JSON
            problems += f" (Content-Type {content_type or 'missing'}: send Content-Type: application/json)"
        return _error(400, "INVALID_REQUEST", f"expected a JSON object {{\"Text\": \"...\"}}; found {problems}")

    @app.exception_handler(StarletteHTTPException)
    def _http(request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # a body FastAPI could not even parse, e.g. bytes that are not UTF-8
            return _error(400, "INVALID_REQUEST", f"expected a JSON object {{\"Text\": \"...\"}} in UTF-8; found a body that cannot be decoded as UTF-8 JSON ({exc.detail})")
        return _error(exc.status_code, "NOT_FOUND" if exc.status_code == 404 else "HTTP_ERROR", str(exc.detail))

    # async: a prediction takes well under a millisecond, less than handing it to a thread costs,
    # and a thread pool of 40 contending for the GIL collapsed under 64 concurrent clients.
    @app.post("/classify-document")
    async def classify_document(request: ClassifyDocumentRequest, explain: bool = False):
        size = len(request.Text.encode("utf-8", errors="surrogatepass"))
        if size > max_text_bytes:
            return _error(413, "DOCUMENT_SIZE_EXCEEDED", f"expected Text of at most {max_text_bytes} bytes (UTF-8); found {size}")
        if explain:  # rare and per request: scored alone, outside the batches
            result = classify_texts(model, [request.Text], explain=True)[0]
        else:
            result = await batcher.classify(request.Text)
        if "ErrorCode" in result:
            found = "an empty Text" if request.Text == "" else "only whitespace"
            return _error(400, result["ErrorCode"], f"expected a non-blank Text; found {found}")
        return result

    @app.get("/health")
    def health():
        return {**info, "Mode": model.mode.value, "Labels": len(model.labels_), "Loaded": True}

    return app


def run_server(host: str, port: int, workers: int) -> None:
    """Serve ``app_from_environment`` with uvicorn until interrupted, in ``workers`` processes.

    The listening socket is bound here with TCP_NODELAY, which accepted connections inherit.
    uvicorn's own multi-worker socket leaves it off (asyncio only sets it on sockets whose
    proto is IPPROTO_TCP), and every answer then waited out a 40 ms delayed ACK.
    """
    import socket

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config("flows.realtime:app_from_environment", factory=True, host=host, port=port,
                            workers=workers, log_level="warning")
    sock = config.bind_socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if workers > 1:
        Multiprocess(config, sockets=[sock]).run()
    else:
        uvicorn.Server(config).run(sockets=[sock])


SERVE_CLASSIFIER_ENV = "DOCCLASS_SERVE_CLASSIFIER"
SERVE_MAX_BYTES_ENV = "DOCCLASS_SERVE_MAX_TEXT_BYTES"


def app_from_environment() -> FastAPI:
    """Uvicorn's app factory: each worker process loads the classifier named in the environment.

    The parent resolves an alias to a version number first, so every worker serves the same one.
    A worker scores and explains with the version's Scorer (classifier_core.scorer), so it never
    imports scikit-learn.
    """
    import gc
    import os

    from classifier_core.scorer import Scorer
    from tasks import registry
    from tasks.settings import docclass_home

    registry.configure(docclass_home())
    version = registry.resolve(registry.ModelRef.parse(os.environ[SERVE_CLASSIFIER_ENV]))
    info = {"DocumentClassifierName": version.name, "DocumentClassifierVersion": str(version.version)}
    max_bytes = int(os.environ.get(SERVE_MAX_BYTES_ENV, MAX_REALTIME_TEXT_BYTES))
    model = registry.load_scorer(version)  # (a model saved without a Scorer loads whole)
    app = create_app(model, info, max_bytes)
    # One answer before serving: numba loads its compiled loops and fast_tfidf builds its lookup
    # tables now, not during the first request, and what they keep is frozen below with the rest.
    model.predict_scores(["warm up"])
    # The ~330k objects that MLflow, Prefect settings and the model leave behind never die; a full
    # collection walking them took ~190 ms and was the whole p99. Freezing takes them out of it.
    gc.freeze()
    if not isinstance(model, Scorer):  # the whole model scores: skip scikit-learn's per-call checks
        import sklearn  # (about 100 us of a 600 us single-document answer)

        sklearn.set_config(assume_finite=True, skip_parameter_validation=True)
    return app
