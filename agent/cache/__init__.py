"""Content-addressed media cache: store, downloads, scrub and horizon prefetch (PROTOCOL §5.1)."""
