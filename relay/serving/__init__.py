"""The HTTP server's side: gunicorn's worker, the client's socket, bodies, responses, logs, replies."""
