"""The status page at ``/`` and its JSON form at ``/status.json``.

Data flows one way, as for ``/metrics``: ``gather`` reads the same sources the
collectors read (in parallel, within the scrape budget), ``assemble`` turns
those readings into a ``StatusModel`` (pure), and ``html`` / ``jsonform``
render the model (pure). A source that fails or runs out of time leaves its
section marked failed with the reason; nothing is served from an earlier read.
"""
