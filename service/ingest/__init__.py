"""``mailflow ingest``: log readers, the Postfix / Exim / tabular parsers, and the shipper that
posts traces to the API.

It runs beside a mail server, so it stays light: the standard library and ``core``'s trace
contract only. No Flask, no Redis, no gunicorn, no other mailflow package.
"""
