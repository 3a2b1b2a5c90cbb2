from django.apps import AppConfig


class RsrTasksConfig(AppConfig):
    name = "rsr_tasks"
    verbose_name = "RSR tasks"

    def ready(self) -> None:
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured

        from djq_contract.forgetting import forget_after

        try:  # a bad setting stops every process at start, not the first run
            forget_after(getattr(settings, "RSR_UNIQUE_TASKS", {}) or {})
        except ValueError as exc:
            raise ImproperlyConfigured(str(exc)) from None

        # Every process that may save a cluster Stat or enqueue a task keeps the Stat
        # and queue index, whatever Redis broker class the settings name, so readers
        # never scan the keyspace.
        from rsr_tasks import broker

        broker.install()

        # Signal receivers must be connected in every process that runs tasks
        # (qcluster workers, the monitor), which all load the app registry.
        from rsr_tasks import instrumentation

        instrumentation.connect()

        from django_q.signals import post_spawn

        from rsr_tasks.unique.schedules import on_post_spawn

        post_spawn.connect(on_post_spawn, dispatch_uid="rsr_tasks.unique.post_spawn")
