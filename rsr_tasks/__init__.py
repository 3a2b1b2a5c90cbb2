"""Django app for RSR-style background work on django-q2.

Holds the environment-driven settings, the single-flight ``unique_task``
machinery, signal instrumentation that feeds the per-pod metric store, the
``django_q_probettp`` management command and a runnable demo project.
"""
