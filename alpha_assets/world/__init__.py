"""The demo world: a seeded simulator that behaves like a set of data vendors.

It writes the files real feeds would deliver into ``<home>/landing/`` and its ground truth into
``<home>/ground_truth/``. The pipeline never imports this package; only the CLI and the tests do.
"""
