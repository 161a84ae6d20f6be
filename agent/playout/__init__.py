"""Playout: turns the scheduler's decisions, alerts and live relay into sound and proofs.

`runner.Playout` is the asyncio loop around the pure planner (agent/scheduler);
`handlers.PlayoutHandlers` registers the sound commands; `proofs` builds §6.4 records.
See docs/PLAYOUT.md.
"""
