"""The matching policies as pure functions, without a server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dispatch.policy import (
    Candidate,
    Tier,
    next_wave,
    prefetch_limit,
    rank_candidates,
    tiers_due,
    wave_deadline,
)

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def cand(name: str, idle_min: float, **kw: object) -> Candidate:
    """A candidate idle since `idle_min` minutes before T0."""
    return Candidate(name, T0 - timedelta(minutes=idle_min), **kw)  # type: ignore[arg-type]


def names(candidates: list[Candidate]) -> list[str]:
    return [c.interpreter_id for c in candidates]


class TestLongestIdle:
    def test_longest_idle_first(self):
        """The interpreter idle the longest is offered first."""
        ranked = rank_candidates("longest_idle", [cand("a", 5), cand("b", 50), cand("c", 20)])
        assert names(ranked) == ["b", "c", "a"]

    def test_ties_keep_their_order(self):
        """Equal idle times keep the order the candidates came in (stable)."""
        ranked = rank_candidates("longest_idle", [cand("x", 10), cand("y", 10), cand("z", 10)])
        assert names(ranked) == ["x", "y", "z"]

    def test_exact_variant_before_related(self):
        """A speaker of the exact variant comes before a longer-idle speaker of a related one."""
        ranked = rank_candidates(
            "longest_idle", [cand("ar", 60, variant_rank=1), cand("ar-SY", 1, variant_rank=0)]
        )
        assert names(ranked) == ["ar-SY", "ar"]

    def test_who_missed_it_comes_after_new_people(self):
        """Someone who let this request's offer run out is asked again only after the others."""
        ranked = rank_candidates(
            "longest_idle", [cand("missed", 90, missed_before=True), cand("new", 1)]
        )
        assert names(ranked) == ["new", "missed"]

    def test_wave_takes_the_first_n(self):
        """A wave is the first N of the order."""
        wave = next_wave("longest_idle", [cand(str(i), i) for i in range(6)], 3)
        assert names(wave) == ["5", "4", "3"]
        assert prefetch_limit("longest_idle", 3) == 3


class TestRingAll:
    def test_everyone_is_in_the_wave(self):
        """ring_all offers to every candidate at once, in longest-idle order."""
        wave = next_wave("ring_all", [cand(str(i), i) for i in range(6)], 3)
        assert names(wave) == ["5", "4", "3", "2", "1", "0"]
        assert prefetch_limit("ring_all", 3) is None


class TestFewestMinutesToday:
    def test_fewest_minutes_first_then_longest_idle(self):
        """The interpreter with the fewest call minutes today goes first; idle time breaks ties."""
        ranked = rank_candidates(
            "fewest_minutes_today",
            [
                cand("busy-day", 90, minutes_today=120.0),
                cand("quiet", 1, minutes_today=0.0),
                cand("some", 5, minutes_today=30.0),
                cand("quiet-longer", 10, minutes_today=0.0),
            ],
        )
        assert names(ranked) == ["quiet-longer", "quiet", "some", "busy-day"]
        assert prefetch_limit("fewest_minutes_today", 3) is None

    def test_wave_takes_the_first_n(self):
        """The wave is the first N by minutes."""
        wave = next_wave(
            "fewest_minutes_today",
            [cand("a", 1, minutes_today=9.0), cand("b", 1, minutes_today=1.0)],
            1,
        )
        assert names(wave) == ["b"]


class TestTiers:
    """Staff first: which pool tiers a request may reach, and when a wave of staff ends."""

    STAFF_THEN_EXTERNAL = (Tier("in_house", 20), Tier("external", 20))

    def test_in_house_first_then_external_after_the_escalation_time(self):
        """For the in-house tier's escalation time only colleagues are asked; then both."""
        tiers = self.STAFF_THEN_EXTERNAL
        assert tiers_due(tiers, 0) == 1
        assert tiers_due(tiers, 19.9) == 1
        assert tiers_due(tiers, 20) == 2
        assert tiers_due(tiers, 3600) == 2

    def test_the_escalation_time_is_the_pools_setting(self):
        """A tier with 7 s escalates after 7 s, not after the default."""
        tiers = (Tier("in_house", 7), Tier("external", 20))
        assert tiers_due(tiers, 6.9) == 1
        assert tiers_due(tiers, 7) == 2

    def test_a_tier_once_reached_stays_reached(self):
        """A request that went to external interpreters early (no colleague free) does not
        fall back to colleagues only in its next wave."""
        assert tiers_due(self.STAFF_THEN_EXTERNAL, 1, reached=2) == 2

    def test_one_tier_or_none(self):
        """With one tier (no in-house pool has members) that tier is all there is."""
        assert tiers_due((Tier("external", 20),), 0) == 1
        assert tiers_due((), 0) == 0

    def test_a_staff_wave_ends_when_the_next_tier_falls_due(self):
        """A wave to colleagues ends at the escalation time when that comes before the
        offer timeout, so the sweeper escalates with the wave deadline it already has."""
        tiers = self.STAFF_THEN_EXTERNAL
        created = T0
        at_5 = T0 + timedelta(seconds=5)
        assert wave_deadline(tiers, 1, created, at_5, 30) == T0 + timedelta(seconds=20)
        assert wave_deadline(tiers, 1, created, at_5, 10) == T0 + timedelta(seconds=15)
        assert wave_deadline(tiers, 2, created, at_5, 30) == T0 + timedelta(seconds=35)

    def test_colleagues_rank_before_external_interpreters(self):
        """Within what is due, a colleague comes before a longer-idle external interpreter;
        someone who missed the request comes after both."""
        ranked = rank_candidates(
            "longest_idle",
            [
                cand("external", 90, tier=1),
                cand("colleague", 1, tier=0),
                cand("missed", 500, tier=0, missed_before=True),
            ],
        )
        assert names(ranked) == ["colleague", "external", "missed"]
