"""`tcs-agent status` against a running agent: a schedule just sent and its next
occurrence, in local time, through a socket only the agent's user (and root) can open."""

from __future__ import annotations

import json
import stat
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from support.agentproc import AgentProc, Province, TrustKey, run_cli
from support.timing import poll

DEV = "dev-0001"
TZ = ZoneInfo("Asia/Ho_Chi_Minh")




def item(item_id: str, start: datetime, rrule: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": item_id,
        "kind": "audio",
        "start": start.isoformat(),
        "window_s": 120,
        "priority": 20,
        "media": [{"url": "https://127.0.0.1:9/a.mp3", "sha256": "ab" * 32, "size": 10,
                   "type": "audio/mpeg"}],
    }  # fmt: skip
    if rrule:
        doc["rrule"] = rrule
    return doc


def status_json(cfg: Path) -> dict[str, Any] | None:
    out = run_cli("status", "-c", str(cfg), "--json")
    return json.loads(out.stdout) if out.returncode == 0 else None


def test_status_shows_schedule_just_sent_and_next_occurrence(tmp_path: Path, broker: Any) -> None:
    key = TrustKey("vn-48-ops")
    agent = AgentProc.create(tmp_path / "a", broker, DEV, ["vn-48"], [key])
    cfg = agent.config
    out = run_cli("status", "-c", str(cfg))
    assert out.returncode == 3 and "not running" in out.stderr

    now = datetime.now(TZ).replace(microsecond=0)
    once = now + timedelta(hours=3)
    daily_start = (now - timedelta(days=2)).replace(hour=5, minute=30, second=0)
    daily_next = daily_start.replace(year=now.year, month=now.month, day=now.day)
    while daily_next <= now:
        daily_next += timedelta(days=1)
    province = Province(broker, key)
    with agent:
        province.wait_for(lambda m: m.topic.endswith("/state") and m.json()["online"], 15)
        jti = province.send(
            DEV,
            "schedule.set",
            {"version": 42, "items": [item("evening-news", once),
                                      item("morning-news", daily_start, "FREQ=DAILY")]},
        )  # fmt: skip
        assert province.wait_ack(jti)["status"] == "accepted"
        s = poll(lambda: (st := status_json(cfg)) and st["schedule_version"] == 42 and st,
                 "the schedule in status")  # fmt: skip
        assert s["link"]["connected"] is True
        nexts = {n["item_id"]: n for n in s["next"]}
        assert nexts["evening-news"]["at"].startswith(once.strftime("%Y-%m-%dT%H:%M:%S"))
        assert nexts["evening-news"]["at"].endswith("+07:00")
        assert nexts["morning-news"]["at"].startswith(daily_next.strftime("%Y-%m-%dT%H:%M:%S"))
        order = [n["item_id"] for n in s["next"]]
        assert order == sorted(order, key=lambda i: nexts[i]["at"])
        assert s["outbox"] is not None and s["cache"] is not None
        # The health monitor's first round has run off the event loop: real /proc figures.
        health = poll(lambda: (st := status_json(cfg)) and st["health"], "a health sample")
        assert health["disk_free_mb"] > 0 and health["mem_used_pct"] is not None
        hb = province.wait_for(lambda m: m.topic.endswith("/hb"), 15).json()
        assert "health" in hb and hb["modem"] is None  # no [modem]: null, never a guess

        text = run_cli("status", "-c", str(cfg))
        assert text.returncode == 0
        assert "schedule: version 42" in text.stdout
        assert "evening-news" in text.stdout and once.strftime("%H:%M:%S") in text.stdout
        vi = run_cli("status", "-c", str(cfg), lang="vi_VN.UTF-8")
        assert vi.returncode == 0
        assert "kết nối: đã nối tới " in vi.stdout and "lịch phát: phiên bản 42" in vi.stdout
        assert "lần phát tới:" in vi.stdout and once.strftime("%H:%M:%S") in vi.stdout
        assert "link: connected" in text.stdout
        assert "parts: all up" in text.stdout
        assert s["parts"]["down"] == {}

        sock = cfg.parent / "state" / "status.sock"
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        # Another user cannot open it (the socket file's mode, and SO_PEERCRED behind it).
        other = subprocess.run(
            ["runuser", "-u", "nobody", "--", "python3", "-c",
             "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])",
             str(sock)],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert other.returncode != 0 and "Permission denied" in other.stderr

        # `test display` through the running agent: answered by the agent, not available.
        disp = run_cli("test", "display", "-c", str(cfg))
        assert disp.returncode == 1 and "through the running agent" in disp.stdout
        disp = run_cli("test", "display", "-c", str(cfg), lang="vi_VN.UTF-8")
        assert disp.stdout.startswith(
            "✗ bảng điện tử qua agent đang chạy: thiết bị này không có bảng điện tử"), disp.stdout
        agent.stop()
    province.close()
    assert not sock.exists()  # removed on a clean stop
