"""The domain, pure: the trace contract, TLS names, windows, percentages, snapshots, connector
rows, insight rules, cursors.

No Flask, no Redis, no other mailflow package: plain Python that every layer may import.
"""
