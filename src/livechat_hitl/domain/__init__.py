"""The handoff domain: states, transitions and records. No I/O here."""
