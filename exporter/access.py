"""Who may read which path: bearer token or basic auth, probe paths open by default."""

from __future__ import annotations

import base64
import hmac
from dataclasses import dataclass

PROBE_PATHS = frozenset({"/healthz", "/readyz", "/livez"})


@dataclass(frozen=True)
class Access:
    """Who may read which paths. Secrets are compared in constant time."""

    bearer_token: str | None = None
    basic_user: str | None = None
    basic_password: str | None = None
    protect_probes: bool = False

    @property
    def enabled(self) -> bool:
        return bool(self.bearer_token or self.basic_password)

    def allows(self, path: str, authorization: str | None) -> bool:
        if not self.enabled or (path in PROBE_PATHS and not self.protect_probes):
            return True
        if not authorization:
            return False
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and self.bearer_token:
            return hmac.compare_digest(value.encode(), self.bearer_token.encode())
        if scheme.lower() == "basic" and self.basic_password:
            try:
                user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
            except ValueError:  # not base64 (binascii.Error), not ASCII, not UTF-8
                return False
            user_ok = hmac.compare_digest(user.encode(), (self.basic_user or "").encode())
            password_ok = hmac.compare_digest(password.encode(), self.basic_password.encode())
            return user_ok and password_ok
        return False

    def challenge(self) -> str:
        return 'Basic realm="django-q-exporter"' if self.basic_password else "Bearer"
