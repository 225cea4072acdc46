"""The web console (管理后台) and the HTTP API: an edge like an adapter.

It calls the same services the chat commands call (the plugins' states, the stats reports,
the config loader), never a copy of a feature's logic. Only `settings` is imported by the
config model; the server modules need the `web` extra (FastAPI, Jinja2, argon2-cffi).
"""
