"""The formats on the wire, pure (bytes in, bytes out, no I/O): SSE, JSON, and each endpoint's stream."""
