"""A report as CSV: one row per device, group or day (figures from figures.py)."""

from __future__ import annotations

import csv
import io

from agent.central.figures import OUTCOMES, Report

HEADER = ("proofs", *OUTCOMES, "forged", "played_s", "skip_reasons", "fail_reasons",
          "on_time_median_s", "on_time_p95_s", "online_share", "expected",
          "missing_offline", "missing_unreported")


def reasons(counts: dict[str, int]) -> str:
    return ";".join(f"{k}:{v}" for k, v in sorted(counts.items()))


def _num(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def render_csv(report: Report) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow((report.by, *HEADER))
    for key, t in report.rows.items():
        median, p95 = t.on_time()
        w.writerow((key, t.proofs, *(t.outcomes.get(o, 0) for o in OUTCOMES), t.forged,
                    _num(t.played_ms / 1000, 3), reasons(t.skip_reasons),
                    reasons(t.fail_reasons), _num(median, 3), _num(p95, 3),
                    _num(t.online_share, 4), t.expected, t.missing_offline,
                    t.missing_unreported))
    return out.getvalue()
