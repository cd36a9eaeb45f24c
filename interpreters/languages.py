"""Language tags: normalisation, the rule for regional variants, and display names.

Names come from the CLDR data in `language_data`; the only hand-written names are the
few that welcome-centre staff know under another name than the standard one.
"""

from __future__ import annotations

from functools import cache

import langcodes

from infra.errors import InvalidInput

# Standard names that staff do not use: CLDR calls fa-AF "Persian (Afghanistan)" and has
# no German name for Kurmanji. Keys are normalised tags.
STAFF_NAMES: dict[str, dict[str, str]] = {
    "fa-AF": {"de": "Dari", "en": "Dari"},
    "ckb": {"de": "Zentralkurdisch (Sorani)", "en": "Central Kurdish (Sorani)"},
    "kmr": {"de": "Nordkurdisch (Kurmanji)", "en": "Northern Kurdish (Kurmanji)"},
}
SUPPORTED_LOCALES = ("de", "en")

# A language's name in itself where CLDR has none or one its speakers do not use for it.
STAFF_AUTONYMS: dict[str, str] = {
    "fa-AF": "دری",
    "kmr": "Kurmancî",
    "ckb": "کوردیی سۆرانی",
}
# What staff type for a language besides its German, English and own names and its codes:
# colloquial and older German names, and dialect names.
STAFF_ALIASES: dict[str, tuple[str, ...]] = {
    "fa": ("Farsi",),
    "fa-AF": ("Farsi", "prs", "Afghanisch-Persisch"),
    "ti": ("Tigrinisch", "Tigrinja"),
    "kmr": ("Kurmanji", "Kurmandschi", "Kurdisch"),
    "ckb": ("Sorani", "Soranî", "Kurdisch"),
    "ps": ("Paschto", "Afghanisch"),
    "so": ("Somalisch",),
    "ku": ("Kurmancî", "Kurmanji"),
}


class InvalidLanguageTag(InvalidInput):
    code = "invalid_language"
    default_message = "That is not a valid language tag."


class UnregisteredLanguageTag(InvalidLanguageTag):
    """A tag of the right form that names no language in the registry (`zz`)."""


def normalize_tag(tag: str, field: str = "language") -> str:
    """The normalised BCP 47 form (`UK` -> `uk`, `ukr` -> `uk`, `prs` -> `fa-AF`); a 422
    naming `field` for anything else."""
    raw = tag.strip().replace("_", "-")
    if not raw or len(raw) > 35:
        raise InvalidLanguageTag(f"{tag!r} is not a language tag.", field=field)
    if not langcodes.tag_is_valid(raw):
        try:
            langcodes.Language.get(raw)
        except ValueError:  # langcodes' LanguageTagError: not even the form of a tag
            raise InvalidLanguageTag(f"{tag!r} is not a language tag.", field=field) from None
        raise UnregisteredLanguageTag(f"{tag!r} names no known language.", field=field)
    normalized: str = langcodes.standardize_tag(raw)
    return normalized


def base_language(tag: str) -> str:
    """The language without region or script (`ar-SY` -> `ar`)."""
    return tag.split("-", 1)[0]


def variant_rank(requested: str, spoken: str) -> int | None:
    """How well a spoken tag serves a requested one: 0 exact, 1 related variant, None not.

    A request for `ar` is served by `ar` and by every regional variant such as `ar-SY`;
    a request for `ar-SY` prefers `ar-SY` and falls back to plain `ar` (not `ar-EG`).
    """
    if spoken == requested:
        return 0
    if "-" not in requested:
        return 1 if base_language(spoken) == requested else None
    return 1 if spoken == base_language(requested) else None


def serving_tags(requested: str, roster_tags: set[str]) -> dict[str, int]:
    """Of the tags in the roster, those that can serve `requested`, with their rank."""
    ranks = {tag: variant_rank(requested, tag) for tag in roster_tags}
    return {tag: rank for tag, rank in ranks.items() if rank is not None}


def pick_locale(query_locale: str | None, accept_language: str | None) -> str:
    """`?locale=` wins, then the first supported Accept-Language entry, else German."""
    candidates: list[str] = []
    if query_locale:
        candidates.append(query_locale)
    if accept_language:
        candidates.extend(part.split(";")[0].strip() for part in accept_language.split(","))
    for candidate in candidates:
        base = candidate.split("-")[0].lower()
        if base in SUPPORTED_LOCALES:
            return base
    return "de"


def display_name(tag: str, locale: str = "de") -> str:
    """The name of a language in German or English, as staff know it."""
    alias = STAFF_NAMES.get(tag, {}).get(locale)
    if alias:
        return alias
    name: str = langcodes.Language.get(tag).display_name(locale)
    return name[:1].upper() + name[1:]


@cache
def autonym(tag: str) -> str:
    """The language's name in itself, in its own script (`uk` -> `українська`)."""
    own = STAFF_AUTONYMS.get(tag)
    if own:
        return own
    name: str = langcodes.Language.get(tag).autonym()
    return name


@cache
def search_names(tag: str) -> tuple[str, ...]:
    """Every name staff may type for a language: German, English, its own name (CLDR), its
    two- and three-letter codes, and the aliases staff use."""
    language = langcodes.Language.get(tag)
    names = [display_name(tag, "de"), display_name(tag, "en"), autonym(tag), tag]
    names += [language.autonym(), language.to_alpha3()]
    names.extend(STAFF_ALIASES.get(tag, ()))
    return tuple(dict.fromkeys(n for n in names if n))
