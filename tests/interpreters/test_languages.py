"""Language tags and names: pure rules, no server."""

from __future__ import annotations

import pytest

from interpreters.languages import (
    InvalidLanguageTag,
    UnregisteredLanguageTag,
    autonym,
    display_name,
    normalize_tag,
    pick_locale,
    search_names,
    serving_tags,
    variant_rank,
)


class TestTags:
    @pytest.mark.parametrize(
        ("given", "normal"),
        [
            ("UK", "uk"),
            ("ukr", "uk"),
            ("prs", "fa-AF"),
            ("fa-af", "fa-AF"),
            ("ar_sy", "ar-SY"),
            ("tir", "ti"),
            ("pus", "ps"),
            ("ckb", "ckb"),
            (" kmr ", "kmr"),
            ("eng", "en"),
        ],
    )
    def test_normalisation_and_aliases(self, given, normal):
        """Tags are normalised: case, three-letter codes and the Dari alias."""
        assert normalize_tag(given) == normal

    @pytest.mark.parametrize("bad", ["", "xx", "123", "klingonisch-ist-keine-sprache", "a" * 40])
    def test_invalid_tags_are_refused(self, bad):
        """Something that is not a language tag is refused with a clear error."""
        with pytest.raises(InvalidLanguageTag) as refused:
            normalize_tag(bad, "languages.0")
        assert refused.value.to_wire()["fields"][0]["field"] == "languages.0"

    @pytest.mark.parametrize(("bad", "well_formed"), [("zz", True), ("xx-YY", True), ("!!", False)])
    def test_a_tag_of_no_language_is_told_from_a_malformed_one(self, bad, well_formed):
        """`zz` has the form of a tag but names no language; `!!` is no tag at all."""
        with pytest.raises(InvalidLanguageTag) as refused:
            normalize_tag(bad)
        assert isinstance(refused.value, UnregisteredLanguageTag) is well_formed

    def test_variant_rule(self):
        """ar is served by ar and ar-SY; ar-SY prefers ar-SY, falls back to ar, never ar-EG."""
        assert variant_rank("ar", "ar") == 0
        assert variant_rank("ar", "ar-SY") == 1
        assert variant_rank("ar-SY", "ar-SY") == 0
        assert variant_rank("ar-SY", "ar") == 1
        assert variant_rank("ar-SY", "ar-EG") is None
        assert variant_rank("ar", "fa") is None
        assert serving_tags("ar-SY", {"ar", "ar-SY", "ar-EG", "uk"}) == {"ar-SY": 0, "ar": 1}


class TestNames:
    @pytest.mark.parametrize(
        ("tag", "de", "en"),
        [
            ("uk", "Ukrainisch", "Ukrainian"),
            ("ar", "Arabisch", "Arabic"),
            ("fa-AF", "Dari", "Dari"),
            ("ti", "Tigrinya", "Tigrinya"),
            ("ckb", "Zentralkurdisch (Sorani)", "Central Kurdish (Sorani)"),
            ("kmr", "Nordkurdisch (Kurmanji)", "Northern Kurdish (Kurmanji)"),
            ("ar-SY", "Arabisch (Syrien)", "Arabic (Syria)"),
        ],
    )
    def test_german_and_english_names(self, tag, de, en):
        """Names come from the language data, with staff names for Dari, Sorani, Kurmanji."""
        assert display_name(tag, "de") == de
        assert display_name(tag, "en") == en

    @pytest.mark.parametrize(
        ("typed", "tag"),
        [
            ("Farsi", "fa-AF"),
            ("Farsi", "fa"),
            ("prs", "fa-AF"),
            ("Tigrinisch", "ti"),
            ("Kurmancî", "kmr"),
            ("Sorani", "ckb"),
            ("ትግርኛ", "ti"),
            ("ukr", "uk"),
        ],
    )
    def test_what_staff_type_finds_the_language(self, typed, tag):
        """Search names hold the CLDR names, the own name, the codes and staff aliases."""
        assert any(typed.casefold() in name.casefold() for name in search_names(tag))

    def test_own_names_in_their_own_script(self):
        """Each language's name in itself, from CLDR or where staff know better."""
        assert [autonym(t) for t in ("uk", "ar", "fa-AF", "ti")] == [
            "українська",
            "العربية",
            "دری",
            "ትግርኛ",
        ]

    def test_locale_choice(self):
        """?locale wins, then Accept-Language, then German."""
        assert pick_locale("en", "de-DE") == "en"
        assert pick_locale(None, "en-GB,en;q=0.8") == "en"
        assert pick_locale(None, "fr-FR, tr") == "de"
        assert pick_locale(None, None) == "de"
