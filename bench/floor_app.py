"""The floor of the mocks' own stack: uvicorn and Starlette answering fixed bytes.

``bench/mocks_throughput.py`` captures a mock's answer to a request, then serves the same bytes from this
app (one route, no state, no parsing) and measures both side by side: the mock's rate as a share of this
floor is what the mock's own work costs, whatever the machine.

    uvicorn bench.floor_app:create_app --factory   (TALKCHECK_FLOOR_BODY names the file of bytes to serve)
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def create_app() -> Starlette:
    body = Path(os.environ["TALKCHECK_FLOOR_BODY"]).read_bytes()
    media_type = os.environ.get("TALKCHECK_FLOOR_TYPE", "application/json")

    async def answer(request: Request) -> Response:
        return Response(body, media_type=media_type)

    return Starlette(routes=[Route("/{path:path}", answer, methods=["GET"])])
