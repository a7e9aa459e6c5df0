"""The dashboard: server-rendered pages for people, on the API's own report builders.

- ``session``: sign-in with a ``read`` key, the session cookie, CSRF tokens, re-admission of
  the key (``service.web.auth``) on every request.
- ``pages``: the blueprint (registered outside the OpenAPI spec): the widget, the TLS flyout,
  the connector report and a connector's page, the insights; the admin forms.
- ``charts``: the geometry of the inline SVG charts the templates draw.

The numbers come from ``service.reports`` exactly as the API serves them (the same cached
views, parsed), so a page and its JSON are two renderings of one query. Arguments go through
the API's own schemas and window rules (``service.web.api``); the API never imports this.
"""
