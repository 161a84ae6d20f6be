"""A generated month of console data for 50 devices, with figures worked out by hand.

November 2026, Asia/Ho_Chi_Minh. A `schedule.set` (version 1) to group vn-48 signed
2026-10-31 00:00 local: `morning` daily 05:30 (600 s) and `evening` daily 21:30
(300 s). Every device heartbeats at HH:10 each hour (heartbeat_s 3600). Deviations:

- dev-0005 offline 10-12 Nov (no heartbeat, no proof): 6 missing, offline.
- dev-0007 did not report the 20 Nov morning although online: 1 missing, unreported.
- dev-0030..dev-0034 have quiet hours over 21:30: every evening `skipped quiet_hours`.
- dev-0040: 15 Nov morning pre-empted after 100 s, resumed at +400 s for 500 s.
- dev-0041: 16 Nov morning `failed media_missing`.
- Start delays: morning (day % 4) s, evening 1 s.
- alert `flood-1` to vn-48-490-20194 (dev-0001..0025) on 15 Nov 10:00: all ack but
  dev-0003; all sound but dev-0003 and dev-0004, device i after 2 + i s, for 20 s.
- dev-0010: one proof signed with a wrong key (forged). dev-9999 (not enrolled): one
  proof. dev-0011: a proof published twice (replayed, same topic), and once more on
  dev-0012's topic (forged there).

The messages go through the collector's own parse + write path (no broker: speed).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine
from support.records import alert_record, proof_record, signed_proof

from agent import jws
from agent.central import command_log, store
from agent.central.acl import DeviceEntry
from agent.central.ingest import IngestContext, parse
from agent.reports import dumps

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
FIRST, LAST = date(2026, 11, 1), date(2026, 11, 30)
HEARTBEAT_S = 3600
DEVICES = [f"dev-{i:04d}" for i in range(1, 51)]
QUIET = {f"dev-{i:04d}" for i in range(30, 35)}
MEDIA = {"url": "https://media.example.vn/m.mp3", "sha256": "ab" * 32, "size": 1000,
         "type": "audio/mpeg"}
SCHEDULE_ARGS = {"version": 1, "items": [
    {"id": "morning", "kind": "audio", "media": [MEDIA], "start": "2026-10-01T05:30:00+07:00",
     "rrule": "FREQ=DAILY", "window_s": 300},
    {"id": "evening", "kind": "audio", "media": [MEDIA], "start": "2026-10-01T21:30:00+07:00",
     "rrule": "FREQ=DAILY", "window_s": 300},
]}
ALERT_AT = datetime(2026, 11, 15, 10, 0, tzinfo=TZ)


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def devices_and_keys() -> tuple[list[DeviceEntry], dict[str, Ed25519PrivateKey]]:
    keys = {d: Ed25519PrivateKey.generate() for d in DEVICES}
    entries = []
    for i, d in enumerate(DEVICES, start=1):
        commune = "vn-48-490-20194" if i <= 25 else "vn-48-490-20195"
        entries.append(DeviceEntry(d, ("vn-48", commune),
                                   jws.b64url_encode(jws.public_raw(keys[d]))))
    return entries, keys


def _days() -> list[date]:
    return [FIRST + timedelta(days=i) for i in range((LAST - FIRST).days + 1)]


def generate(engine: Engine, devices: list[DeviceEntry],
             keys: dict[str, Ed25519PrivateKey]) -> None:
    ctx = IngestContext({d.id: jws.public_raw(keys[d.id]) for d in devices}, TZ, HEARTBEAT_S)
    msgs: list[tuple[str, bytes, int]] = []

    def proof(dev: str, record: dict[str, object], at: datetime, on: str | None = None,
              key: Ed25519PrivateKey | None = None) -> None:
        token = signed_proof(key or keys[dev], dev, record)
        msgs.append((f"tcs/v1/dev/{on or dev}/proof", token, _ms(at) + 1000))

    issued = datetime(2026, 10, 31, 0, 0, tzinfo=TZ)
    command_log.record(engine, command_log.SentCommand(
        "sched-1", _ms(issued), _ms(issued) + 300_000, "tester", "vn-48", "vn-48-emergency",
        "schedule.set", "group", "vn-48", SCHEDULE_ARGS))
    command_log.record(engine, command_log.SentCommand(
        "alert-1", _ms(ALERT_AT), _ms(ALERT_AT) + 300_000, "tester", "vn-48",
        "vn-48-emergency", "alert.start", "group", "vn-48-490-20194",
        {"alert_id": "flood-1", "text": "Lũ", "priority": 100}))
    for dev in DEVICES:
        n = int(dev[4:])
        for day in _days():
            off = dev == "dev-0005" and date(2026, 11, 10) <= day <= date(2026, 11, 12)
            if off:
                continue
            for hour in range(24):
                at = datetime(day.year, day.month, day.day, hour, 10, tzinfo=TZ)
                msgs.append((f"tcs/v1/dev/{dev}/hb", dumps({"seq": hour, "at": at.isoformat()}),
                             _ms(at)))
            morning = datetime(day.year, day.month, day.day, 5, 30, tzinfo=TZ)
            evening = datetime(day.year, day.month, day.day, 21, 30, tzinfo=TZ)
            delay = day.day % 4
            if dev == "dev-0040" and day.day == 15:
                proof(dev, proof_record(f"m@{day}#1", subject="morning", scheduled=morning,
                                        start_delay_s=delay, played_s=100,
                                        outcome="preempted"), morning)
                proof(dev, proof_record(f"m@{day}#2", subject="morning", scheduled=morning,
                                        start_delay_s=400, played_s=500, outcome="resumed"),
                      morning)
            elif dev == "dev-0041" and day.day == 16:
                proof(dev, proof_record(f"m@{day}", subject="morning", scheduled=morning,
                                        played_s=0, outcome="failed", reason="media_missing"),
                      morning)
            elif not (dev == "dev-0007" and day.day == 20):
                proof(dev, proof_record(f"m@{day}", subject="morning", scheduled=morning,
                                        start_delay_s=delay, played_s=600), morning)
            if dev in QUIET:
                proof(dev, proof_record(f"e@{day}", subject="evening", scheduled=evening,
                                        played_s=0, outcome="skipped", reason="quiet_hours"),
                      evening)
            else:
                proof(dev, proof_record(f"e@{day}", subject="evening", scheduled=evening,
                                        start_delay_s=1, played_s=300), evening)
        if n <= 25:
            if n != 3:
                msgs.append((f"tcs/v1/dev/{dev}/ack", dumps({
                    "jti": "alert-1", "cmd": "alert.start", "status": "accepted", "code": None,
                    "detail": None, "at": (ALERT_AT + timedelta(seconds=1)).isoformat()}),
                    _ms(ALERT_AT) + 1500))
            if n not in (3, 4):
                started = ALERT_AT + timedelta(seconds=2 + n)
                proof(dev, alert_record(f"alert-flood-1@{dev}", "flood-1", started), started)
    nov5 = datetime(2026, 11, 5, 12, 0, tzinfo=TZ)
    proof("dev-0010", proof_record("fake-1", scheduled=nov5, played_s=60), nov5,
          key=Ed25519PrivateKey.generate())
    proof("dev-9999", proof_record("ghost-1", scheduled=nov5, played_s=60), nov5,
          key=Ed25519PrivateKey.generate())
    genuine = next(m for m in msgs if m[0] == "tcs/v1/dev/dev-0011/proof")
    msgs.append((genuine[0], genuine[1], _ms(nov5)))  # replayed on its own topic
    msgs.append(("tcs/v1/dev/dev-0012/proof", genuine[1], _ms(nov5)))  # and on another's
    msgs.sort(key=lambda m: m[2])
    for i in range(0, len(msgs), 2000):
        rows: list[store.Row] = []
        hits: list[store.BucketHit] = []
        for topic, payload, received in msgs[i:i + 2000]:
            parsed = parse(topic, payload, received, ctx)
            rows.extend(parsed.rows)
            hits.extend(parsed.hits)
        store.write(engine, rows, hits)
