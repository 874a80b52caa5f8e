"""Which CLDR locale a person's language reads in: the one mapping every formatter uses.

A customer, a tenant and a staff user each have a language (``customers.models.LANGUAGE_CHOICES``);
Babel formats numbers, money and dates by a CLDR locale. Unknown or empty languages read as English.
"""

LOCALES = {"en": "en_US", "sv": "sv_SE"}
DEFAULT_LANGUAGE = "en"


def locale_for(language: str | None) -> str:
    """The CLDR locale of a language code (``"sv"`` → ``"sv_SE"``; ``None`` or unknown → ``"en_US"``)."""
    return LOCALES.get((language or DEFAULT_LANGUAGE)[:2].lower(), LOCALES[DEFAULT_LANGUAGE])


def language_of(language: str | None) -> str:
    """``language`` if documents can be written in it, else the default language."""
    return language if language in LOCALES else DEFAULT_LANGUAGE
