"""Who may spend the key, on what, from which pages, and what never leaves the relay (redaction)."""
