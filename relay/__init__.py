"""The relay: validate a chat request, open the upstream stream, relay it in the original wire format."""
