"""The worker: the loop that folds ingested traces into aggregates (claim, fold, heartbeat),
and per tenant the refresh of window sums and precomputed views and the insight evaluation;
and the notifier (``notifier``, ``webhook_sender``), its own process, that sends insight
webhooks.

No Flask: it may import reports, core, store, telemetry and config, never web or cli.
"""
