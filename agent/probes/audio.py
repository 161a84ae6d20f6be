"""Sound cards the kernel knows, from `/proc/asound/cards`.

Read because "the speaker is silent" on a pole is most often a USB sound card that
came loose or a HAT whose overlay was lost in an update: the kernel's card list says
which at a glance, before anyone blames the agent. `[]` means ALSA is there and has
no card; None means the file cannot be read (no ALSA at all, or garbage).
"""

from __future__ import annotations

import re
from pathlib import Path

from agent.probes import read_text

# " 0 [Headphones     ]: bcm2835_headpho - bcm2835 Headphones"
_CARD = re.compile(r"^\s*(\d+)\s+\[([^\]]*)\]\s*:\s*(.*)$")


def sound_cards(proc_root: Path = Path("/proc")) -> list[str] | None:
    text = read_text(proc_root / "asound/cards")
    if text is None:
        return None
    if "no soundcards" in text:
        return []
    cards = []
    for line in text.splitlines():
        m = _CARD.match(line)
        if m:
            cards.append(m.group(2).strip())
    if not cards and text.strip():
        return None  # text that is neither a card list nor "no soundcards": do not guess
    return cards
