"""Playout: turns the scheduler's decisions, alerts and live relay into sound and
pictures at the device's outputs, with proofs.

`output.Output` is the interface every output implements (`speaker.SpeakerOutput`
today, a board next); `runner.Playout` is one asyncio loop around the pure planner
(agent/scheduler) per output; `coordinator.AlertCoordinator` fans `alert.*` and
`test.run` out to every loop; `handlers.PlayoutHandlers` registers those commands;
`proofs` builds §6.4 records; `wiring.start_playout` builds it all from the config.
See docs/PLAYOUT.md.
"""
