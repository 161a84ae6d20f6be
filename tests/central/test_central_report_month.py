"""A generated month for 50 devices gives exactly the hand-computed figures, in SQLite
and in PostgreSQL (a private cluster started by the test). See support/month.py for
what the month holds; every figure below is worked out from that description."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import month
from support.postgres import postgres_cluster

from agent.central.figures import compute
from agent.central.report_csv import render_csv
from agent.central.store import open_db, resolve_url

HEADER = "device,proofs,completed,preempted,resumed,skipped,failed,cancelled,forged"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'central.db'}"
    else:
        with postgres_cluster() as url:
            yield url


def _rows(text: str) -> dict[str, dict[str, str]]:
    return {r[next(iter(r))]: r for r in csv.DictReader(io.StringIO(text))}


def test_generated_month_gives_the_hand_computed_figures(db_url: str) -> None:
    engine = open_db(resolve_url(db_url, Path(".")))
    devices, keys = month.devices_and_keys()
    month.generate(engine, devices, keys)

    report = compute(engine, devices, month.FIRST, month.LAST, month.TZ, "device",
                     month.HEARTBEAT_S)
    text = render_csv(report)
    assert text.startswith(HEADER + ",")
    rows = _rows(text)
    cols = ("proofs", "completed", "preempted", "resumed", "skipped", "failed", "cancelled",
            "forged", "played_s", "skip_reasons", "fail_reasons", "on_time_median_s",
            "on_time_p95_s", "online_share", "expected", "missing_offline",
            "missing_unreported")

    def fig(device: str) -> tuple[str, ...]:
        return tuple(rows[device][c] for c in cols)

    # An ordinary commune-A device: 60 occurrences + the alert.
    assert fig("dev-0002") == ("61", "61", "0", "0", "0", "0", "0", "0", "27020.000", "", "",
                               "1.000", "3.000", "1.0000", "60", "0", "0")
    # Offline three days: 6 occurrences missing while offline; 648 of 720 hours online.
    assert fig("dev-0005") == ("55", "55", "0", "0", "0", "0", "0", "0", "24320.000", "", "",
                               "1.000", "3.000", "0.9000", "60", "6", "0")
    assert fig("dev-0007") == ("60", "60", "0", "0", "0", "0", "0", "0", "26420.000", "", "",
                               "1.000", "3.000", "1.0000", "60", "0", "1")
    # Forged proof counted apart, never played.
    assert fig("dev-0010")[:9] == ("61", "61", "0", "0", "0", "0", "0", "1", "27020.000")
    # Replayed on its own topic: stored once. On another device's topic: forged there.
    assert fig("dev-0011")[:9] == ("61", "61", "0", "0", "0", "0", "0", "0", "27020.000")
    assert fig("dev-0012")[:9] == ("61", "61", "0", "0", "0", "0", "0", "1", "27020.000")
    # Quiet hours: every evening skipped, with its reason; morning delays only.
    assert fig("dev-0030") == ("60", "30", "0", "0", "30", "0", "0", "0", "18000.000",
                               "quiet_hours:30", "", "1.500", "3.000", "1.0000", "60", "0", "0")
    assert fig("dev-0040") == ("61", "59", "1", "1", "0", "0", "0", "0", "27000.000", "", "",
                               "1.000", "3.000", "1.0000", "60", "0", "0")
    assert fig("dev-0041") == ("60", "59", "0", "0", "0", "1", "0", "0", "26400.000", "",
                               "media_missing:1", "1.000", "3.000", "1.0000", "60", "0", "0")
    # Not enrolled: its proof is kept apart and counted only as forged.
    assert fig("dev-9999")[:9] == ("0", "0", "0", "0", "0", "0", "0", "1", "0.000")
    assert fig("dev-9999")[13:] == ("", "0", "0", "0")

    total_proofs = sum(int(r["proofs"]) for r in rows.values())
    # 50 x 60, +23 alert, +1 dev-0040 resume, -6 dev-0005, -1 dev-0007.
    assert total_proofs == 3000 + 23 + 1 - 6 - 1

    [alert] = report.alerts
    assert (alert.alert_id, alert.targeted, alert.acked, alert.played) == ("flood-1", 25, 24, 23)
    assert (alert.first_sound_s, alert.median_sound_s) == (3.0, 16.0)

    missing = [(n.device, n.subject, n.status) for n in report.not_played
               if n.status in ("offline", "unreported")]
    assert missing == [("dev-0005", "morning", "offline"), ("dev-0005", "evening", "offline")] * 3 \
        + [("dev-0007", "morning", "unreported")]
    assert ("dev-0041", "morning", "failed") in [(n.device, n.subject, n.status)
                                                  for n in report.not_played]

    by_group = _rows(render_csv(compute(engine, devices, month.FIRST, month.LAST, month.TZ,
                                        "group", month.HEARTBEAT_S)))
    assert by_group["vn-48-490-20194"]["proofs"] == str(25 * 60 + 23 - 6 - 1)
    assert by_group["vn-48-490-20195"]["skipped"] == str(5 * 30)
    assert by_group["vn-48"]["expected"] == str(50 * 60)
    by_day = _rows(render_csv(compute(engine, devices, month.FIRST, month.LAST, month.TZ,
                                      "day", month.HEARTBEAT_S)))
    assert by_day["2026-11-15"]["proofs"] == str(100 + 23 + 1)
    assert by_day["2026-11-11"]["missing_offline"] == "2"
    assert by_day["2026-11-11"]["online_share"] == f"{(49 * 24) / (50 * 24):.4f}"
    engine.dispose()
