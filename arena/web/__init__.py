"""The site's HTML interface: page views (voting, live battles, rankings, staff dashboard), their URL
routes, the live battle's websocket consumer and routing, the request middleware, and the rendered-page
cache (``pages``). Views parse the request, call one service function and render; ``helpers`` holds what
they share. No domain rule lives here.
"""
