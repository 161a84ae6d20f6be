"""Boards: LED matrices (MAX7219 via luma.led-matrix), LCD framebuffers and the
image-dir test board. Not built yet (a later issue); the agent runs with
`[display] kind = "none"`, and the heartbeat reports `display: null`."""
