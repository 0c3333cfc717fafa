"""The JSON API's interface layer: ``site`` (the NinjaAPI object and its error handling), ``common``
(error schema, staff-session auth, CSRF check), and a router per area: ``voting``, ``rankings``
(exports and judges bring their own routers from their apps). Routers call services; no domain rule
lives here.
"""
