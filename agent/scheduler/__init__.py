"""The scheduler, as pure code: occurrences of schedule items, quiet hours, and the
planner deciding what sounds now (see planner.py's docstring and docs/SCHEDULER.md)."""

from agent.scheduler.decision import (
    ActiveSource,
    Decision,
    Outcome,
    SkipProof,
    SkipReason,
    Start,
    StartOccurrence,
    StartSource,
    Stop,
    source_key,
)
from agent.scheduler.occurrences import (
    Occurrence,
    item_media,
    next_occurrence,
    occurrence_key,
    occurrences,
    upcoming_media,
    validate_rrule,
)
from agent.scheduler.planner import PlanInputs, plan, resume_offset
from agent.scheduler.quiet import (
    QuietHoursLike,
    QuietWindow,
    in_quiet,
    parse_quiet_hours,
    quiet_warnings,
    sounds_in_quiet,
)
from agent.scheduler.state import RETENTION, Interruption, LedgerEntry, PlannerState, Track

__all__ = [
    "RETENTION",
    "ActiveSource",
    "Decision",
    "Interruption",
    "LedgerEntry",
    "Occurrence",
    "Outcome",
    "PlanInputs",
    "PlannerState",
    "QuietHoursLike",
    "QuietWindow",
    "SkipProof",
    "SkipReason",
    "Start",
    "StartOccurrence",
    "StartSource",
    "Stop",
    "Track",
    "in_quiet",
    "item_media",
    "next_occurrence",
    "occurrence_key",
    "occurrences",
    "parse_quiet_hours",
    "plan",
    "quiet_warnings",
    "resume_offset",
    "sounds_in_quiet",
    "source_key",
    "upcoming_media",
    "validate_rrule",
]
