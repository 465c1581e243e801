"""A scripted model server on 127.0.0.1 that the real agent CLIs talk to instead of a provider.

Each CLI speaks its own wire protocol (see `protocols`); the server turns every request into a
`Turn` (who is asking, what the conversation holds), asks the test's `Brain` what the model
does next (`Reply`: tool calls in the abstract, text, usage), and answers in that protocol. The
server keeps what it billed, per request, so a test can compare the orchestrator's usage with
what the "provider" charged, to the token.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

# The choices every scripted question offers.
ANSWERS = ({"label": "Yes", "description": "go on"}, {"label": "No", "description": "stop"})


@dataclass(frozen=True)
class Usage:
    """Tokens the server bills for one response."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input + other.input,
            self.output + other.output,
            self.cache_read + other.cache_read,
            self.cache_write + other.cache_write,
        )


@dataclass(frozen=True)
class Call:
    """One tool call, in the abstract: `write` (path, content), `ask` (question), `shell` (cmd)."""

    kind: str
    args: dict[str, Any]


@dataclass
class Reply:
    """What the model answers to one request."""

    calls: list[Call] = field(default_factory=list)
    text: str = ""
    usage: Usage = field(default_factory=lambda: Usage(1000, 200, 5000, 300))
    status: int = 200  # an HTTP error code plays a provider fault
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Turn:
    """One request, normalised over the protocols."""

    protocol: str
    path: str
    model: str
    main: bool  # the agent's own turn (it offers tools), not a title or token count
    tools: list[str]
    user_texts: list[str]  # every user message's text, oldest first (tool results excluded)
    tool_results: list[str]  # results since the last user text, oldest first
    body: dict[str, Any]
    rounds: int = 0  # the model's answers already in the conversation

    @property
    def first_user(self) -> str:
        """The conversation's first user message (the stage prompt, as the CLI expanded it)."""
        return self.user_texts[0] if self.user_texts else ""

    @property
    def last_user(self) -> str:
        """The latest user message."""
        return self.user_texts[-1] if self.user_texts else ""

    def everything(self) -> str:
        """The whole request as text, for matching on anything in it."""
        return json.dumps(self.body)


class Brain(Protocol):
    """The test's model: what to answer to a main turn."""

    def reply(self, turn: Turn) -> Reply:
        """The next step of the conversation."""
        ...


class Protocol_(Protocol):
    """One wire protocol: which requests it serves, how they read, how answers are written."""

    name: str

    def serves(self, method: str, path: str) -> bool:
        """Whether this protocol answers `method path`."""
        ...

    def turn(self, path: str, body: dict[str, Any]) -> Turn:
        """The request as a `Turn`."""
        ...

    def side_reply(self, turn: Turn) -> tuple[int, dict[str, Any] | None, Reply | None]:
        """(status, JSON body) for a non-streaming side request, or a Reply to stream."""
        ...

    def stream(self, turn: Turn, reply: Reply, seq: int) -> list[bytes]:
        """The reply as the protocol's event stream chunks."""
        ...


@dataclass
class Billed:
    """One answered request and what it was billed."""

    protocol: str
    main: bool
    model: str
    usage: Usage


class ModelServer:
    """A threaded HTTP server on 127.0.0.1 that answers as `brain` in each CLI's protocol."""

    def __init__(self, brain: Brain | Callable[[Turn], Reply], protocols: list[Protocol_]):
        self.brain = brain
        self.protocols = protocols
        self.billed: list[Billed] = []
        self.turns: list[Turn] = []
        self.lock = threading.Lock()
        self._seq = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> ModelServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def main_usage(self, protocol: str | None = None) -> Usage:
        """What the main turns were billed, in all (or for one protocol)."""
        total = Usage()
        for bill in self.billed:
            if bill.main and (protocol is None or bill.protocol == protocol):
                total = total + bill.usage
        return total

    def main_turns(self) -> list[Turn]:
        """The agent's own turns, oldest first."""
        with self.lock:
            return [turn for turn in self.turns if turn.main]

    def _answer(self, turn: Turn) -> Reply:
        brain = self.brain
        reply = brain(turn) if callable(brain) else brain.reply(turn)
        return reply

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _protocol(self, method: str) -> Protocol_ | None:
                path = self.path.split("?")[0]
                return next((p for p in server.protocols if p.serves(method, path)), None)

            def do_GET(self) -> None:
                self._json(200, {"data": [], "models": []})

            def do_HEAD(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else self._chunked()
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                protocol = self._protocol("POST")
                if protocol is None:
                    self._json(404, {"error": {"message": f"not scripted: {self.path}"}})
                    return
                turn = protocol.turn(self.path, body if isinstance(body, dict) else {})
                with server.lock:
                    server.turns.append(turn)
                    server._seq += 1
                    seq = server._seq
                status, payload, reply = protocol.side_reply(turn)
                if reply is None and payload is not None:
                    self._json(status, payload)
                    return
                if reply is None:
                    try:
                        reply = server._answer(turn)
                    except Exception as exc:  # a broken script must show, not hang the CLI
                        self._json(500, {"error": {"message": f"script error: {exc!r}"}})
                        raise
                if reply.status != 200:
                    self._json(
                        reply.status, {"error": {"type": "scripted", "message": reply.text}},
                        reply.headers,
                    )  # fmt: skip
                    return
                with server.lock:
                    server.billed.append(Billed(protocol.name, turn.main, turn.model, reply.usage))
                chunks = protocol.stream(turn, reply, seq)
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for chunk in chunks:
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            def _chunked(self) -> bytes:
                if "chunked" not in (self.headers.get("Transfer-Encoding") or ""):
                    return b""
                data = b""
                while True:
                    size = int(self.rfile.readline().strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return data
                    data += self.rfile.read(size)
                    self.rfile.readline()

            def _json(
                self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler


def sse(event: str | None, data: dict[str, Any]) -> bytes:
    """One server-sent event."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()
