"""The services: what the API and the CLI call. Each module imports only what it needs (no re-exports here), so a
command that needs one service does not pay for importing the others.
"""
