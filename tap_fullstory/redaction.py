"""The one place secrets are taken out of text: every log line and every TapError.

The config registers the API key as it is parsed; from then on `redact` replaces it, and
the forms a gateway or proxy might echo it in (URL-quoted, base64), wherever it appears:
in an HTTP reason phrase, an error body, a listing entry or an export's error details.
"""

import base64
import logging
from urllib.parse import quote, quote_plus

MASK = "<api_key>"
SHORTEST_CUT = 6  # a text cut mid-key ends with its first chars; fewer than this are noise
SHORTEST_SECRET = 8  # no FullStory key is shorter; a shorter one would mask common words

_forms = []  # every form of every registered secret, longest first


def spellings(secret):
    """The secret as sent, and the ways it can come back encoded."""
    raw = secret.encode("utf-8")
    forms = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret)}
    for payload in (raw, raw + b":"):  # Basic auth's user, with or without ':password'
        forms.add(base64.b64encode(payload).decode("ascii").rstrip("="))
        forms.add(base64.urlsafe_b64encode(payload).decode("ascii").rstrip("="))
    return {form for form in forms if form}


def register(secret):
    """From now on, `secret` (the run's one API key) is taken out of every text `redact`
    sees, in place of any key registered before."""
    _forms.clear()
    if not isinstance(secret, str) or len(secret.strip()) < SHORTEST_SECRET:
        return
    forms = set()
    for candidate in {secret, secret.strip()}:
        forms |= spellings(candidate)
    _forms.extend(sorted(forms, key=len, reverse=True))


def forget():
    """Drop every registered secret (tests)."""
    _forms.clear()


def redact(text):
    """`text` without any registered secret, nor a secret's beginning where it was cut."""
    if not _forms or not isinstance(text, str):
        return text
    for form in _forms:
        if form in text:
            text = text.replace(form, MASK)
    return _without_cut_secret(text)


def _without_cut_secret(text):
    # An error quotes a body cut at some length; if the cut fell inside a key, the text
    # ends with (or, before an ellipsis, holds) the key's first characters.
    for end in (len(text), text.rfind("…")):
        if end <= 0:
            continue
        for form in _forms:
            for size in range(min(len(form) - 1, end), SHORTEST_CUT - 1, -1):
                if text.endswith(form[:size], 0, end):
                    return text[:end - size] + MASK + text[end:]
    return text


class RedactingFilter(logging.Filter):
    """Takes secrets out of a log record's message and traceback before any handler
    writes it."""

    def filter(self, record):
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install(logger=None):
    """Put a RedactingFilter on every handler of `logger` (the root logger, where singer's
    stderr handler sits) that has none yet."""
    logger = logger or logging.getLogger()
    for handler in logger.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
