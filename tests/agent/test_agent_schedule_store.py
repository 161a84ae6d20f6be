"""schedule.set is kept durably as signed and read back by the same validator."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from support.agentproc import AgentProc, Province, TrustKey

from agent.db import open_db
from agent.handlers import load_schedule
from agent.state import StateStore

DEV = "dev-0001"
ITEM = {
    "id": "morning-news",
    "kind": "audio",
    "start": "2026-11-24T05:30:00+07:00",
    "rrule": "FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR",
    "window_s": 120,
    "priority": 20,
    "media": [
        {
            "url": "https://media.example.vn/a.mp3",
            "sha256": "ab" * 32,
            "size": 10,
            "type": "audio/mpeg",
        }
    ],
    "future_field": {"ignored": True},
}


def test_schedule_survives_restart_and_versions_hold(tmp_path: Path, broker: Any) -> None:
    key = TrustKey("vn-48-emergency")
    agent = AgentProc.create(tmp_path / "a", broker, DEV, ["vn-48"], [key])
    province = Province(broker, key)
    with agent:
        province.wait_for(lambda m: m.topic.endswith("/state") and m.json()["online"], 15)
        jti = province.send(DEV, "schedule.set", {"version": 7, "items": [ITEM]})
        assert province.wait_ack(jti)["status"] == "accepted"
        agent.stop()
        restarted = time.time()
        agent.start()
        state = province.wait_for(
            lambda m: m.topic.endswith("/state") and m.json()["online"] and m.at >= restarted, 15
        ).json()
        assert state["schedule_version"] == 7
        jti = province.send(DEV, "schedule.set", {"version": 7, "items": []})
        assert province.wait_ack(jti)["status"] == "stale"
        agent.stop()
    province.close()

    with open_db(agent.config.parent / "state" / "state.db") as db:
        kept = load_schedule(StateStore(db))
    assert kept is not None and kept.version == 7
    (item,) = kept.items
    assert item.id == "morning-news" and item.rrule == "FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR"
    assert item.window_s == 120 and item.media[0].sha256 == "ab" * 32
