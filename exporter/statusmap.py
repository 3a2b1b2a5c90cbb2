"""Map django-q2's translated status strings to stable English label values.

django-q2 stores the status as a (lazily) translated string, so a worker
running under another LANGUAGE_CODE writes e.g. "Arbeitend". We build the
reverse table from every catalogue django-q2 ships, once.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

log = logging.getLogger("exporter.statusmap")

_ENGLISH = {"Starting": "starting", "Idle": "idle", "Working": "working",
            "Stopping": "stopping", "Stopped": "stopped"}


@lru_cache(maxsize=1)
def _table() -> dict[str, str]:
    table = {k: v for k, v in _ENGLISH.items()}
    table.update({k.lower(): v for k, v in _ENGLISH.items()})
    try:
        import django_q
        from django.utils import translation

        locale_dir = Path(django_q.__file__).parent / "locale"
        languages = [p.name for p in locale_dir.iterdir() if p.is_dir()]
        for lang in languages:
            with translation.override(lang):
                for english, value in _ENGLISH.items():
                    table.setdefault(str(translation.gettext(english)), value)
    except Exception as exc:  # settings not configured (pure unit tests): English only
        log.debug("status translations unavailable: %s", exc)
    return table


def normalise(status: object) -> str:
    """Return one of model.STATUSES, or "unknown".

    The table holds every catalogue's wording, so the status is rendered in
    whatever language is active here (no per-call translation override: that
    costs more than the rest of decoding a Stat).
    """
    text = status if isinstance(status, str) else str(status)
    table = _table()
    return table.get(text) or table.get(text.lower(), "unknown")
