"""Matching policies: who among the free interpreters is offered a request, in which order.

A policy is a pure function of the candidates and their history; the database work of
finding candidates lives in `dispatch.candidates`. Every policy ranks, in this order:
1. interpreters not yet offered this request before those who already missed it once
   (so a second wave reaches new people before ringing the same ones again);
2. the earlier pool tier before a later one (in-house staff before external interpreters);
3. the exact language variant before a related one (`ar-SY` before `ar` for `ar-SY`);
4. the policy's own key: longest idle first, or fewest minutes in calls today;
ties keep the order the candidates came in (stable sort).

Which tiers a request may reach at all is decided here too (`tiers_due`, `wave_deadline`),
from the time since it was made and the pools' escalation times: a pure function that the
wave and sweeper machinery applies at every wave.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from infra.config import MatchingPolicyName

LONGEST_IDLE: MatchingPolicyName = "longest_idle"
RING_ALL: MatchingPolicyName = "ring_all"
FEWEST_MINUTES_TODAY: MatchingPolicyName = "fewest_minutes_today"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A free interpreter who could serve a request, with the history a policy looks at."""

    interpreter_id: str
    idle_since: datetime
    """The end of the interpreter's last call; toggling status does not reset it."""
    variant_rank: int = 0
    """0 speaks the requested tag exactly, 1 a related variant."""
    missed_before: bool = False
    """Already offered this request once and let the offer run out."""
    minutes_today: float = 0.0
    """Minutes spent in calls since midnight (for `fewest_minutes_today`)."""
    tier: int = 0
    """The position of the interpreter's pool tier (0 in-house, 1 external)."""


def rank_candidates(policy: MatchingPolicyName, candidates: Sequence[Candidate]) -> list[Candidate]:
    """The candidates in the order the policy offers them."""
    if policy == FEWEST_MINUTES_TODAY:
        return sorted(
            candidates,
            key=lambda c: (
                c.missed_before,
                c.tier,
                c.variant_rank,
                c.minutes_today,
                c.idle_since,
            ),
        )
    # longest_idle and ring_all share the order; ring_all only differs in the wave size.
    return sorted(candidates, key=lambda c: (c.missed_before, c.tier, c.variant_rank, c.idle_since))


def next_wave(
    policy: MatchingPolicyName, candidates: Sequence[Candidate], wave_size: int
) -> list[Candidate]:
    """Who is offered the request in the next wave: everyone for ring_all, else the first N."""
    ranked = rank_candidates(policy, candidates)
    return ranked if policy == RING_ALL else ranked[:wave_size]


def prefetch_limit(policy: MatchingPolicyName, wave_size: int) -> int | None:
    """How many candidates the database must return for the policy to decide correctly.

    Candidates come from the database already in longest-idle order within each group, so
    longest_idle needs only the first N of them; the other policies look at everyone.
    """
    return wave_size if policy == LONGEST_IDLE else None


@dataclass(frozen=True, slots=True)
class Tier:
    """A pool tier that has interpreters, and how long a request is its alone."""

    name: str
    escalation_s: float
    """Seconds after the request was made until the next tier is asked as well."""


def tiers_due(tiers: Sequence[Tier], elapsed_s: float, reached: int = 1) -> int:
    """How many of the `tiers` (in order) may be offered a request `elapsed_s` seconds
    after it was made: the first at once, each further one once the escalation times of
    those before it have passed; never fewer than the `reached` so far."""
    due, until = 1, 0.0
    for tier in tiers[:-1]:
        until += tier.escalation_s
        if elapsed_s < until:
            break
        due += 1
    return max(min(reached, len(tiers)), min(due, len(tiers)), 1 if tiers else 0)


def wave_deadline(
    tiers: Sequence[Tier], reached: int, created_at: datetime, now: datetime, timeout_s: float
) -> datetime:
    """When a wave sent `now` to the first `reached` tiers ends: after the offer timeout,
    or earlier, when the next tier falls due (so escalation needs no timer of its own)."""
    deadline = now + timedelta(seconds=timeout_s)
    if reached >= len(tiers):
        return deadline
    escalation = created_at + timedelta(seconds=sum(t.escalation_s for t in tiers[:reached]))
    return min(deadline, max(escalation, now))
