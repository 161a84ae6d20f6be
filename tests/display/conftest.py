"""Shared fixtures for the board tests: a recording SPI bus that fails loudly."""

from __future__ import annotations

import pytest
from support.spi import RecordingSpi


@pytest.fixture
def spi() -> RecordingSpi:
    return RecordingSpi()
