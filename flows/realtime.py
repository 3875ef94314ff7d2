"""Real-time classification (ClassifyDocument): one document per request over HTTP.

The answer comes from ``classify_texts``, the same code path as the batch job, so a document
gets the same Classes/Labels in both. Bad input always gets a 4xx JSON error, never a 500.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from classifier_core.config import MAX_REALTIME_TEXT_BYTES
from classifier_core.inference import classify_texts
from classifier_core.model import TextClassifier


class ClassifyDocumentRequest(BaseModel):
    Text: str = Field(description="The document, UTF-8, at most 10 KB (configurable).")


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"ErrorCode": code, "Message": message})


def create_app(model: TextClassifier, info: dict, max_text_bytes: int = MAX_REALTIME_TEXT_BYTES) -> FastAPI:
    """The ASGI app serving one loaded classifier.

    Args:
        model: the classifier to serve.
        info: name and version shown by /health.
        max_text_bytes: the largest Text accepted, in UTF-8 bytes.
    """
    app = FastAPI(title="docclass real-time classification", version="1")

    @app.exception_handler(RequestValidationError)
    def _invalid(request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return _error(400, "INVALID_REQUEST", f"expected a JSON object {{\"Text\": \"...\"}}; found {problems}")

    @app.exception_handler(StarletteHTTPException)
    def _http(request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # a body FastAPI could not even parse, e.g. bytes that are not UTF-8
            return _error(400, "INVALID_REQUEST", f"expected a JSON object {{\"Text\": \"...\"}} in UTF-8; found {exc.detail}")
        return _error(exc.status_code, "NOT_FOUND" if exc.status_code == 404 else "HTTP_ERROR", str(exc.detail))

    # async: a prediction takes about a millisecond, less than handing it to a thread costs,
    # and a thread pool of 40 contending for the GIL collapsed under 64 concurrent clients.
    @app.post("/classify-document")
    async def classify_document(request: ClassifyDocumentRequest):
        size = len(request.Text.encode("utf-8", errors="surrogatepass"))
        if size > max_text_bytes:
            return _error(413, "DOCUMENT_SIZE_EXCEEDED", f"expected Text of at most {max_text_bytes} bytes (UTF-8); found {size}")
        result = classify_texts(model, [request.Text])[0]
        if "ErrorCode" in result:
            return _error(400, result["ErrorCode"], f"expected a non-blank Text; found {result['ErrorMessage']}")
        return result

    @app.get("/health")
    def health():
        return {**info, "Mode": model.mode.value, "Labels": len(model.labels_), "Loaded": True}

    return app


SERVE_CLASSIFIER_ENV = "DOCCLASS_SERVE_CLASSIFIER"
SERVE_MAX_BYTES_ENV = "DOCCLASS_SERVE_MAX_TEXT_BYTES"


def app_from_environment() -> FastAPI:
    """Uvicorn's app factory: each worker process loads the classifier named in the environment.

    The parent resolves an alias to a version number first, so every worker serves the same one.
    """
    import os

    from tasks import registry
    from tasks.settings import docclass_home

    registry.configure(docclass_home())
    version = registry.resolve(registry.ModelRef.parse(os.environ[SERVE_CLASSIFIER_ENV]))
    info = {"DocumentClassifierName": version.name, "DocumentClassifierVersion": str(version.version)}
    max_bytes = int(os.environ.get(SERVE_MAX_BYTES_ENV, MAX_REALTIME_TEXT_BYTES))
    return create_app(registry.load_classifier(version), info, max_bytes)
