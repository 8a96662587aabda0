"""The demo world: a seeded simulator that behaves like a set of data vendors.

It writes the files real feeds would deliver into ``<home>/landing/`` and its ground truth into
``<home>/ground_truth/``. The pipeline never imports this package; only the CLI, the benchmarks and the tests do.
It is a package of its own, beside ``alpha_assets``: installed with a development checkout, left out of the
production image (``deploy/docker``), and it builds only on ``alpha_assets.lib`` and ``partitions``.
"""
