"""media.prefetch and schedule.set fill the cache of a real agent; the heartbeat says so."""

from __future__ import annotations

import hashlib
import os
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from support.agentproc import AgentProc, Province, TrustKey
from support.http_media import MediaServer
from support.timing import poll

DEV = "dev-0001"
# The test's media server is on 127.0.0.1, which a device refuses by default.
PRIVATE_OK = "\n[cache]\nallow_private_hosts = true\n"
VN = timezone(timedelta(hours=7))


def ref(url: str, data: bytes, *, sha: str | None = None) -> dict[str, Any]:
    return {
        "url": url,
        "sha256": sha or hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "type": "audio/wav",
    }


def heartbeat_after(province: Province, t: float) -> dict[str, Any]:
    jti = province.send(DEV, "status.request")
    province.wait_ack(jti)
    hb = province.wait_for(lambda m: m.topic.endswith(f"{DEV}/hb") and m.at >= t, 10)
    return hb.json()  # type: ignore[no-any-return]


def test_prefetch_and_schedule_fill_the_cache(
    tmp_path: Path, broker: Any, request: pytest.FixtureRequest
) -> None:

    key = TrustKey("vn-48-emergency")
    good, other, later = os.urandom(50_000), os.urandom(30_000), os.urandom(20_000)
    server = MediaServer().start()
    request.addfinalizer(server.stop)
    usb = {name: server.add(f"/{name}", data) for name, data in
           (("good.wav", good), ("other.wav", other), ("later.wav", later))}
    agent = AgentProc.create(tmp_path / "a", broker, DEV, ["vn-48"], [key], extra=PRIVATE_OK)
    province = Province(broker, key)
    with agent:
        province.wait_for(lambda m: m.topic.endswith(f"{DEV}/state") and m.json()["online"], 15)
        jti = province.send(DEV, "media.prefetch", {"media": [ref(usb["good.wav"], good)]})
        assert province.wait_ack(jti, status="accepted")
        assert province.wait_ack(jti, status="done", timeout=20)

        # Wrong hash: never enters the store; the ack names the failing reference.
        bad = ref(usb["other.wav"], other, sha="0" * 64)
        jti = province.send(DEV, "media.prefetch", {"media": [bad]})
        failed = province.wait_ack(jti, status="failed", timeout=30)
        assert failed["code"] == "media_missing"
        assert any("000000000000" in w for w in failed.get("warnings", [])), failed

        # A schedule 12 h ahead, in the province's time (later today or tomorrow, inside
        # the 48 h horizon whatever the hour): its media is fetched ahead of time.
        start = (datetime.now(UTC) + timedelta(hours=12)).astimezone(VN)
        item = {"id": "news", "kind": "audio", "start": start.isoformat(timespec="seconds"),
                "media": [ref(usb["later.wav"], later)]}  # fmt: skip
        jti = province.send(DEV, "schedule.set", {"version": 1, "items": [item]})
        assert province.wait_ack(jti)["status"] == "accepted"
        hb = poll(
            lambda: (h := heartbeat_after(province, time.time()))["cache"]["items"] == 2 and h,
            "the scheduled media in the heartbeat's cache figures",
            every=0.5,
        )
        assert hb["cache"] == {"items": 2, "bytes": len(good) + len(later), "missing": 0}
    province.close()
