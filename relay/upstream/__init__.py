"""The upstream side: which API serves a model, connections to it, sending with retries, reading answers."""
