"""The endpoints, one module each and each the same shape: read the call, decide, send, open the reply."""
