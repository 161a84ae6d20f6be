"""Hardware drivers behind narrow interfaces (amplifier power, later modem and relays)."""
