"""Secrets never reach a log line: a filter that replaces every known secret value with `***`.

Known secrets: the values of environment variables whose names say they hold one (API keys and
secrets, passphrases, the local venue's key pairs) and any value registered at run time (keys
decrypted from a key file). The filter rewrites the final message text, exception text included.
"""

from __future__ import annotations

import logging
import os
import re

SECRET_NAME = re.compile(r"(SECRET|PASSPHRASE|PASSWORD|API_KEY|PRIVATE|TOKEN|^MM_VENUE_KEYS$)", re.IGNORECASE)
MIN_SECRET_LEN = 6  # shorter values would redact ordinary words
MASK = "***"


def secrets_in_environment(environ: dict[str, str] | None = None) -> set[str]:
    environ = dict(os.environ) if environ is None else environ
    found: set[str] = set()
    for name, value in environ.items():
        if not SECRET_NAME.search(name) or not value:
            continue
        found.add(value)
        if name.upper() == "MM_VENUE_KEYS":  # key:secret[,key:secret...]
            for pair in value.split(","):
                found.update(part for part in pair.split(":") if part)
    return {s for s in found if len(s) >= MIN_SECRET_LEN}


class RedactSecrets(logging.Filter):
    _registered: set[str] = set()

    def __init__(self, secrets: set[str]) -> None:
        super().__init__()
        self.secrets = secrets

    @classmethod
    def from_environment(cls) -> RedactSecrets:
        return cls(secrets_in_environment())

    @classmethod
    def register(cls, secret: str) -> None:
        """Redact `secret` from now on, in every RedactSecrets filter of this process."""
        if len(secret) >= MIN_SECRET_LEN:
            cls._registered.add(secret)

    def redact(self, text: str) -> str:
        for secret in sorted(self.secrets | self._registered, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = self.redact(text)
            record.exc_info = None
            redacted = f"{redacted}\n{record.exc_text}"
            record.exc_text = None
        if redacted != message or record.args:
            record.msg, record.args = redacted, None
        return True
