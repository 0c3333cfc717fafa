"""Building blocks every room of the arena may import, and which import nothing else of the arena:

- ``errors``: the domain errors (``ArenaError`` and kin) that pages and the API turn into clear messages;
- ``hot_sql``: hand-written SQL of the hot paths, prepared and checked against the models' columns;
- ``identity``: the text rules that tell whether an answer names a model (anonymity before the vote);
- ``json_body``: request bodies checked once (size, depth, finite numbers) for the pages and the API.
"""
