"""A report as one self-contained HTML file: inline SVG charts, no script, nothing
fetched, in the reader's language (gettext domain `tcs_central`)."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from agent.central.figures import OUTCOMES, PLAYED, Report
from agent.central.i18n import _, translation
from agent.central.report_csv import reasons
from agent.central.svg import stacked_bars

TEMPLATES = Path(__file__).resolve().parent / "templates"
MAX_NOT_PLAYED = 5000


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)),
                      autoescape=select_autoescape(["html", "j2"]))
    env.globals["_"] = _
    return env


def _status(status: str) -> str:
    names = {"skipped": _("skipped"), "failed": _("failed"), "cancelled": _("cancelled"),
             "offline": _("device offline"), "unreported": _("no proof received")}
    return names.get(status, status)


def render_html(report: Report) -> str:
    tz = report.tz
    days = list(report.per_day)
    labels = [d.strftime("%d") for d in days]
    tallies = list(report.per_day.values())
    chart_outcomes = stacked_bars(labels, [
        (_("played"), "#2a8a3a", [sum(t.outcomes.get(o, 0) for o in PLAYED) for t in tallies]),
        (_("skipped or failed"), "#e0a020",
         [sum(t.outcomes.get(o, 0) for o in ("skipped", "failed", "cancelled"))
          for t in tallies]),
        (_("missing"), "#c02020", [t.missing_offline + t.missing_unreported for t in tallies]),
    ], _("Occurrences per day"))
    chart_online = stacked_bars(labels, [
        (_("online share (%)"), "#2060c0",
         [100 * (t.online_share or 0.0) for t in tallies]),
    ], _("Online share per day"))
    headers = [_("proofs"), *(_(o) for o in OUTCOMES), _("forged"), _("played (s)"),
               _("skip reasons"), _("failure reasons"), _("on-time median (s)"),
               _("on-time p95 (s)"), _("online"), _("expected"), _("missing: offline"),
               _("missing: no proof")]
    rows = []
    for key, t in report.rows.items():
        median, p95 = t.on_time()
        share = t.online_share
        rows.append([key, str(t.proofs), *(str(t.outcomes.get(o, 0)) for o in OUTCOMES),
                     str(t.forged), f"{t.played_ms / 1000:.0f}", reasons(t.skip_reasons),
                     reasons(t.fail_reasons), "" if median is None else f"{median:.1f}",
                     "" if p95 is None else f"{p95:.1f}",
                     "" if share is None else f"{100 * share:.1f}%", str(t.expected),
                     str(t.missing_offline), str(t.missing_unreported)])
    alerts = [[a.alert_id, _local(a.sent_ms, tz), a.targeted, a.acked, a.played,
               "" if a.first_sound_s is None else f"{a.first_sound_s:.1f}",
               "" if a.median_sound_s is None else f"{a.median_sound_s:.1f}"]
              for a in report.alerts]
    listed = report.not_played[:MAX_NOT_PLAYED]
    lang = translation().info().get("language", "en") or "en"
    by_label = {"device": _("device"), "group": _("group"), "day": _("day")}[report.by]
    return _env().get_template("report.html.j2").render(
        lang=lang, start=report.start.isoformat(), end=report.end.isoformat(), tz=str(tz),
        generated=datetime.now(UTC).astimezone(tz).strftime("%Y-%m-%d %H:%M"),
        chart_outcomes=chart_outcomes, chart_online=chart_online, by_label=by_label,
        headers=headers, rows=rows, bad_cols={8, 16, 17}, alerts=alerts,
        # The most specific group (the commune, by convention last): who acts on it.
        not_played=[(n.device, (report.groups.get(n.device) or ("",))[-1], n.subject,
                     _local(n.at_ms, tz), _status(n.status), n.reason or "") for n in listed],
        truncated=len(report.not_played) > len(listed),
    )


def _local(ms: int, tz: tzinfo) -> str:
    return datetime.fromtimestamp(ms / 1000, tz).strftime("%Y-%m-%d %H:%M")
