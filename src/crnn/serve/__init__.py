"""``crnn serve``: an HTTP recognition service (FastAPI) with dynamic micro-batching.

Needs the ``serve`` extra (``pip install crnn[serve]``). ``create_app(recognizer, settings)`` builds
the ASGI app, so it can be tested with FastAPI's ``TestClient`` or run under any ASGI server.
"""

from crnn.serve.app import create_app
from crnn.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]
