"""tcs-agent: the device side of the TCS edge protocol (see docs/ and ../shared/PROTOCOL.md)."""

__version__ = "0.1.0"
