"""django-q-exporter: health probe and Prometheus exporter for django-q2 clusters."""

__version__ = "0.1.0"
