"""The middle layer with the dispatcher in process: signed commands → verification →
handlers → alert coordinator → one planner loop per output (recording fakes) → acks
and proofs in the durable outbox. No broker, no sound card, no fixed sleeps."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support.fake_output import FakeOutput
from support.protocol import DEVICE, Signer, make_ctx
from support.timing import until

from agent.clock import ClockStatus
from agent.config import AlertsConfig
from agent.db import open_db
from agent.dispatch import Dispatcher
from agent.jws import b64url_decode
from agent.outbox import Outbox
from agent.playout.coordinator import AlertCoordinator
from agent.playout.handlers import PlayoutHandlers
from agent.playout.runner import Playout, PlayoutDeps
from agent.replay import ReplayStore
from agent.reporter import Reporter
from agent.reports import Topics
from agent.state import StateStore
from agent.wire import device_topic

TOPIC = device_topic(DEVICE, "cmd")
TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def test_playout_dispatch_commune_test_run_never_interrupts_province_alert(
    tmp_path: Path,
) -> None:
    province = Signer.new("vn-48-emergency")
    commune = Signer.new("vn-48-490-20194")
    ctx = make_ctx(
        [
            province.trust_key(),
            commune.trust_key(("schedule.set", "test.run"), max_priority=49),
        ]
    )
    media = tmp_path / "m.bin"
    media.write_bytes(b"x")

    async def media_path(_sha: str) -> Path | None:
        return media

    async def main() -> tuple[list[dict[str, Any]], list[dict[str, Any] | None], FakeOutput]:
        db = open_db(tmp_path / "state.db")
        outbox = Outbox(db, 16 << 20)
        state = StateStore(db)
        reporter = Reporter(outbox, Topics(DEVICE), Ed25519PrivateKey.generate(), TZ)
        speaker = FakeOutput("speaker", ["audio"], test_what="speaker", alert_s=1.0)
        board = FakeOutput("board", ["slides"], test_what="display", alert_s=1.0)
        loops = []
        for out in (speaker, board):
            lp = Playout(
                PlayoutDeps(
                    output=out, tz=TZ, media_path=media_path, proof=reporter.proof,
                    load_state=lambda: None, save_state=lambda _t: None,
                )
            )  # fmt: skip
            await lp.start()
            loops.append(lp)
        co = AlertCoordinator(loops, media_path, wall=time.time)
        dispatcher = Dispatcher(
            ctx,
            replay=ReplayStore(db),
            state=state,
            reporter=reporter,
            clock_status=lambda: ClockStatus(True, "ntp"),
        )
        PlayoutHandlers(co, AlertsConfig(), wall=time.time).register(dispatcher)

        def records(leaf: str) -> list[dict[str, Any]]:
            out = []
            for r in outbox.pending(1000):
                if r.topic.endswith(f"/{leaf}"):
                    body = r.payload.decode()
                    if leaf == "proof":  # a JWS: the claims are the middle part
                        body = b64url_decode(body.split(".")[1]).decode()
                    out.append(json.loads(body))
            return out

        now = int(time.time())
        alert = province.claims("alert.start", {"alert_id": "flood", "text": "Lũ", "repeat": 1},
                                iat=now)  # fmt: skip
        await dispatcher.handle(TOPIC, province.sign(alert))
        await until(lambda: speaker.now_playing() == "alert:flood", "alert sounding")
        test = commune.claims("test.run", {"what": "speaker"}, iat=now)
        await dispatcher.handle(TOPIC, commune.sign(test))

        def second(jti: str) -> dict[str, Any] | None:
            return next(
                (a for a in records("ack") if a["jti"] == jti and a["status"] != "accepted"),
                None,
            )

        await until(lambda: second(alert["jti"]) and second(test["jti"]), "both second acks")
        await until(lambda: len(records("proof")) >= 2, "alert proofs")
        proofs = records("proof")
        done = [second(alert["jti"]), second(test["jti"])]
        for lp in loops:
            await lp.stop()
        db.close()
        return proofs, done, speaker

    proofs, (alert_done, test_done), speaker = asyncio.run(main())
    assert alert_done is not None and alert_done["status"] == "done", alert_done
    assert test_done is not None and test_done["status"] == "done", test_done
    # The alert sounded to its end on both outputs; the test came after, on the speaker.
    assert speaker.labels() == ["alert:flood", "test"]
    alert_proofs = [p for p in proofs if p.get("alert_id") == "flood"]
    assert sorted(p["outcome"] for p in alert_proofs) == ["completed", "completed"]
    speaker.assert_clean()
