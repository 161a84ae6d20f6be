"""`tcs-central watch`: a live MQTT view of every device's reports.

The model and drawing are pure (agent/central/table.py); this module only moves
messages from the broker into it and the result to the terminal, reconnecting
with jittered exponential back-off when the broker goes away.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import deque
from collections.abc import Callable
from typing import TextIO

import aiomqtt
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_random_exponential

from agent.central.mqtt import device_topic, make_client
from agent.central.settings import BrokerSettings
from agent.central.table import REPORTS, Board, LogLine

CLEAR = "\x1b[H\x1b[2J"
LOUD = "\x1b[1;31m"
RESET = "\x1b[0m"
TAIL = 20
STABLE_S = 30.0  # a connection that lived this long resets the back-off
TAKEOVER_HINT = (
    "(The broker allows one connection per user: a tcs-central send logged in as the "
    "same user closes this one. Give watch its own broker user with --username.)"
)


class Printer:
    """Where the board goes: a redrawn screen on a TTY, appended lines otherwise."""

    def __init__(self, board: Board, out: TextIO, err: TextIO, *, tty: bool,
                 json_out: bool, clock: Callable[[], float] = time.monotonic) -> None:
        self.board = board
        self.out = out
        self.err = err
        self.tty = tty and not json_out
        self.json_out = json_out
        self.clock = clock
        self.tail: deque[LogLine] = deque(maxlen=TAIL)
        self.status = "connecting"

    def note(self, text: str) -> None:
        self.status = text
        if self.tty:
            self.redraw()
        else:
            self.err.write(text + "\n")
            self.err.flush()

    def log(self, line: LogLine) -> None:
        if self.json_out:
            self.out.write(json.dumps(line.as_json(), ensure_ascii=False) + "\n")
        elif self.tty:
            self.tail.append(line)
            return
        else:
            self.out.write(line.text + "\n")
        self.out.flush()

    def redraw(self) -> None:
        if not self.tty:
            return
        lines = [CLEAR + f"tcs-central watch  [{self.status}]", "",
                 self.board.render(self.clock()), ""]
        for entry in self.tail:
            lines.append(f"{LOUD}{entry.text}{RESET}" if entry.loud else entry.text)
        self.out.write("\n".join(lines) + "\n")
        self.out.flush()


async def _session(broker: BrokerSettings, board: Board, printer: Printer,
                   on_subscribed: Callable[[], None] | None) -> None:
    """One connection: subscribe and feed messages until the broker goes away.

    Returns normally when a connection that lived STABLE_S is lost (so back-off
    restarts from one second); raises MqttError when it could not connect at all
    or the connection dropped soon after connecting.
    """
    connected_at: float | None = None
    try:
        async with make_client(broker) as client:
            connected_at = time.monotonic()
            await client.subscribe([(device_topic("+", leaf), 1) for leaf in REPORTS])
            printer.note(f"connected to {broker.url} as {broker.client_id}")
            if on_subscribed is not None:
                on_subscribed()
            async for message in client.messages:
                payload = message.payload
                raw = bytes(payload) if isinstance(payload, bytes | bytearray) else b""
                for line in board.handle(str(message.topic), raw, printer.clock()):
                    printer.log(line)
                printer.redraw()
    except aiomqtt.MqttError as exc:
        if connected_at is None:
            raise
        printer.note(f"connection to {broker.url} lost ({exc}); reconnecting. {TAKEOVER_HINT}")
        if time.monotonic() - connected_at < STABLE_S:
            # A connection that keeps dropping right away counts as a failed attempt,
            # so back-off keeps growing instead of hammering the broker.
            raise


async def _ticker(printer: Printer) -> None:
    while True:  # heartbeat ages change even when no message arrives
        printer.redraw()
        await asyncio.sleep(1.0)


async def _forever(broker: BrokerSettings, board: Board, printer: Printer,
                   on_subscribed: Callable[[], None] | None) -> None:
    def before_sleep(state: RetryCallState) -> None:
        wait = state.next_action.sleep if state.next_action else 0
        exc = state.outcome.exception() if state.outcome else None
        printer.note(f"cannot connect to {broker.url} ({exc}); retrying in {wait:.1f} s")

    while True:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(aiomqtt.MqttError),
            # Full jitter, 1 s doubling to 60 s (PROTOCOL §1).
            wait=wait_random_exponential(multiplier=1, max=60),
            before_sleep=before_sleep,
        ):
            with attempt:
                await _session(broker, board, printer, on_subscribed)
        await asyncio.sleep(random.uniform(0.0, 1.0))


async def run_watch(
    broker: BrokerSettings, board: Board, printer: Printer, *,
    duration_s: float | None = None, on_subscribed: Callable[[], None] | None = None,
) -> int:
    """Watch until `duration_s` passes (None: until cancelled). Returns the exit code."""
    ticker = asyncio.create_task(_ticker(printer)) if printer.tty else None
    try:
        async with asyncio.timeout(duration_s):
            await _forever(broker, board, printer, on_subscribed)
    except TimeoutError:
        pass
    finally:
        if ticker is not None:
            ticker.cancel()
    if not printer.tty and not printer.json_out:
        printer.out.write("\n" + board.render(printer.clock()) + "\n")
        printer.out.flush()
    return 0
