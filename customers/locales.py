"""Which CLDR locale a person's language reads in: the one mapping every formatter uses.

A customer, a tenant and a staff user each have a language (``customers.models.LANGUAGE_CHOICES``);
Babel formats numbers, money and dates by a CLDR locale. Unknown or empty languages read as English.
"""

from contextlib import contextmanager
from contextvars import ContextVar

from django.utils import translation

LOCALES = {"en": "en_US", "sv": "sv_SE"}
DEFAULT_LANGUAGE = "en"


def locale_for(language: str | None) -> str:
    """The CLDR locale of a language code (``"sv"`` → ``"sv_SE"``; ``None`` or unknown → ``"en_US"``)."""
    return LOCALES.get((language or DEFAULT_LANGUAGE)[:2].lower(), LOCALES[DEFAULT_LANGUAGE])


def language_of(language: str | None) -> str:
    """``language`` if documents can be written in it, else the default language."""
    return language if language in LOCALES else DEFAULT_LANGUAGE


# Staff pages speak the person's language but write money, numbers and dates the tenant's way
# (``300 000,00 kr`` for a Swedish tenant whatever the reader's language). The staff language
# middleware sets this for the request; elsewhere formats follow the active language.
_formats_language: ContextVar[str | None] = ContextVar("formats_language", default=None)


@contextmanager
def formats_in(language: str | None):
    """Within the block, money, numbers and dates are written as ``language`` writes them."""
    token = _formats_language.set(language_of(language) if language else None)
    try:
        yield
    finally:
        _formats_language.reset(token)


def formats_language() -> str:
    """The language money, numbers and dates are written in now: ``formats_in``'s, else the active one."""
    return _formats_language.get() or language_of((translation.get_language() or DEFAULT_LANGUAGE)[:2])
