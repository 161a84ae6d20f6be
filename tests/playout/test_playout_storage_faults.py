"""A full or read-only card never silences the device (issue 7 item 5): a real agent
with its state folder on a real tmpfs, a real broker, sound heard at the null sink."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from support.acl import allow_all, deny_proofs
from support.agentproc import AgentProc, Msg, Province
from support.playout import DEVICE, sound_agent, verified_proof, wait_online
from support.pulse import PulseRig, Recorder
from support.recorded import ALERT_TEXT, send_accepted, wait_audible
from support.tmpfs import fill, remount, tmpfs


def _event(code: str) -> Any:
    def pred(m: Msg) -> bool:
        return m.topic == f"tcs/v1/dev/{DEVICE}/event" and m.json()["code"] == code

    return pred


def _proof_topic(m: Msg) -> bool:
    return m.topic == f"tcs/v1/dev/{DEVICE}/proof"


def _kv(db: Path, key: str) -> Any:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
    finally:
        conn.close()
    return None if row is None else json.loads(row[0])


@contextmanager
def restarted(agent: AgentProc, province: Province, pulse: PulseRig) -> Iterator[Recorder]:
    """Start the (stopped) agent again with the sink recorded, until it is online."""
    rec = pulse.recorder
    rec.start()
    try:
        agent.start()
        with agent:  # kills it on the way out
            wait_online(province)
            yield rec
    finally:
        rec.stop()


def _short_alert(province: Province, alert_id: str) -> str:
    return send_accepted(
        province, "alert.start", {"alert_id": alert_id, "text": ALERT_TEXT, "repeat": 1},
        timeout=30,
    )  # fmt: skip


def test_read_only_state_folder_at_start_still_obeys_and_plays(
    tmp_path: Path, broker: Any, pulse: PulseRig
) -> None:
    agent, province, _ = sound_agent(tmp_path / "a", broker)
    with tmpfs(tmp_path / "a" / "state", size="16m") as state_dir:
        # A first run writes the state file; then the card goes read-only (as the
        # kernel does after I/O errors on an SD card).
        agent.start()
        wait_online(province)
        jti = province.send(DEVICE, "volume.set", {"level": 80})
        province.wait_ack(jti, status="accepted")
        assert agent.stop() == 0
        remount(state_dir, ro=True)
        province.messages.clear()

        with restarted(agent, province, pulse) as rec:
            event = province.wait_for(_event("storage_readonly"), timeout=30).json()
            assert event["level"] == "error"
            jti = province.send(DEVICE, "volume.set", {"level": 60})
            assert province.wait_ack(jti)["status"] == "accepted"
            alert = _short_alert(province, "ro-1")
            wait_audible(rec)
            assert province.wait_ack(alert, status="done", timeout=60)
            province.wait_for(_proof_topic, timeout=30)
            # The card takes writes again: the state kept in memory is written back.
            remount(state_dir, ro=False)
            province.wait_for(_event("storage_ok"), timeout=30)
            assert _kv(state_dir / "state.db", "audio.volume") == 60


def test_full_card_still_obeys_and_plays_and_every_proof_arrives(
    tmp_path: Path, broker: Any, pulse: PulseRig
) -> None:
    agent, province, _ = sound_agent(tmp_path / "a", broker)
    with tmpfs(tmp_path / "a" / "state", size="8m") as state_dir:
        # Proofs cannot leave while the broker refuses them (wrong ACL): they must
        # wait, through the full card, until both are fixed.
        deny_proofs(broker)
        with restarted(agent, province, pulse) as rec:
            filler = fill(state_dir)
            # Commands are still journalled (in memory) and acked; the card's state
            # is announced once the first write fails.
            for level in range(30, 90):
                jti = province.send(DEVICE, "volume.set", {"level": level})
                assert province.wait_ack(jti, timeout=15)["status"] == "accepted"
                if any(_event("storage_full")(m) for m in list(province.messages)):
                    break
            province.wait_for(_event("storage_full"), timeout=5)
            start = time.time()
            alert = _short_alert(province, "full-1")
            wait_audible(rec, after=start)
            province.wait_ack(alert, status="done", timeout=60)
            # Space returns: what was kept in memory is written to the card.
            filler.unlink()
            province.wait_for(_event("storage_ok"), timeout=30)
        # Even a crash right after loses nothing now: the proof is on the card.
        agent.kill()
        assert not [m for m in province.messages if _proof_topic(m)]
        allow_all(broker)
        with restarted(agent, province, pulse):
            msg = province.wait_for(_proof_topic, timeout=60)
        record = verified_proof(agent, msg)
        assert record["alert_id"] == "full-1" and record["outcome"] == "completed"
