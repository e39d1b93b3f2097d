"""``crnn serve``: the HTTP recognition service with dynamic batching (needs the serve extra)."""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import re

from crnn.commands.options import add_decoder_args, finite_float, positive_float, postprocess

HELP = "HTTP recognition service with dynamic batching (needs the serve extra)"


def listen_address(text: str) -> str:
    """An argparse type for ``--host``: a literal IP address must be a valid one (``999.1.1.1`` is not);
    a name is left to the resolver."""
    literal = text.strip("[]")
    if re.fullmatch(r"[0-9.]+", literal) or ":" in literal:  # meant as an address, not a name
        try:
            ipaddress.ip_address(literal)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an IP address (IPv4: four numbers 0-255, e.g. "
                                             "127.0.0.1 or 0.0.0.0)") from None
    return text


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the ``crnn serve`` options to ``p``.

    The integer limits and the signs of the times are checked by ``ServeSettings`` (the same checks for
    the API); the flags' types refuse what it cannot be given: nan, inf and a body limit <= 0 MB."""
    p.add_argument("--model", help="a .pt checkpoint or an exported .onnx model (default: the bundled model)")
    p.add_argument("--host", type=listen_address, default="127.0.0.1",
                   help="address to listen on (default %(default)s: this machine only; 0.0.0.0 for every interface)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default %(default)s)")
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes, each with its own model copy (default %(default)s)")
    p.add_argument("--threads", type=int, default=None,
                   help="inference threads per worker (default: the available cores that are not busy)")
    p.add_argument("--max-batch", type=int, default=32, help="images per forward pass (default %(default)s)")
    p.add_argument("--dynamic-width", action="store_true",
                   help="PaddleOCR's variable width (each batch as wide as its widest image) instead of the "
                        "model's training width (docs/variable_width.md)")
    p.add_argument("--max-wait-ms", type=finite_float, default=5.0,
                   help="how long a batch waits to fill up (default %(default)s)")
    p.add_argument("--max-images", type=int, default=64, help="images per request (default %(default)s)")
    p.add_argument("--max-request-mb", type=positive_float, default=16.0,
                   help="request body size limit (default %(default)s)")
    p.add_argument("--timeout", type=finite_float, default=30.0,
                   help="seconds a request may wait for its results (default %(default)s)")
    p.add_argument("--header-timeout", type=float, default=10.0,
                   help="seconds a connection has to send its request headers; then it is closed "
                        "(default %(default)s)")
    p.add_argument("--max-connections", type=int, default=1000,
                   help="open connections per worker; more are closed at once (default %(default)s)")
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="a name clients reach the service by (Host header); repeat for more; '*' allows any "
                        "(default: localhost, 127.0.0.1, ::1 and --host)")
    p.add_argument("--allow-cross-origin", action="store_true",
                   help="accept requests that web pages of other origins send from a browser (refused by default)")
    add_decoder_args(p)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    from crnn.config import PostProcessConfig
    from crnn.limits import check_range

    check_range("--max-request-mb", args.max_request_mb, 0.001, 1024.0)  # before int(): inf would overflow
    from crnn.serve.server import run as serve
    from crnn.serve.settings import ServeSettings

    pp = {k: v for k, v in dataclasses.asdict(postprocess(None, args)).items()
          if v != getattr(PostProcessConfig(), k)}  # only what the flags changed
    serve(ServeSettings(model=args.model, host=args.host, port=args.port, workers=args.workers, threads=args.threads,
                        max_batch=args.max_batch, dynamic_width=args.dynamic_width, max_wait_ms=args.max_wait_ms,
                        max_images=args.max_images,
                        max_request_bytes=int(args.max_request_mb * 1024 * 1024), timeout_s=args.timeout,
                        header_timeout_s=args.header_timeout, max_connections=args.max_connections,
                        allowed_hosts=tuple(args.allowed_host), allow_cross_origin=args.allow_cross_origin,
                        postprocess=pp))
    return 0
