"""Regenerate every committed result from nothing, with one command: ``python -m probing.results``.

- :mod:`.plan`: what a run covers (``conf/results.yaml``), the runs it declares (``RunSpec``) and
  the executor that runs them through :mod:`probing.runner` (in this process, or several at once).
- :mod:`.stages`: each stage's runs and the page built from their records.
- :mod:`.tables`: the rows of the tables, from records alone.
- :mod:`.pages`: ``results/<page>.md`` under its provenance header, its data as JSON beside it, and
  README's "Results so far" block built from that data.
"""
