"""uvicorn's h11 protocol, answering requests it cannot parse with JSON."""

from __future__ import annotations

import h11
import orjson
from uvicorn.protocols.http.h11_impl import H11Protocol

from state.api.names import MAX_REQUEST_HEAD

__all__ = ["JsonErrorsH11"]


class JsonErrorsH11(H11Protocol):
    """uvicorn's h11 protocol, answering requests it cannot parse with JSON.

    h11 refuses a request whose head is over MAX_REQUEST_HEAD bytes (a 1 MB URL)
    or is not HTTP before any route sees it; uvicorn's own answer is plain text.
    """

    def send_400_response(self, msg: str) -> None:
        body = orjson.dumps(
            {
                "error": "the request is not valid HTTP, or its request line and headers are "
                f"longer than {MAX_REQUEST_HEAD} bytes"
            }
        )
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        for event in (
            h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            output = self.conn.send(event)
            if output:
                self.transport.write(output)
        self.transport.close()
