"""The up or down state of a dependency, and how its outages are counted (the log lines
they give are checked on real servers in tests/integration/test_outages.py)."""

from __future__ import annotations

import asyncio

from infra.outages import FLAP_S, Outages


class TestOutages:
    async def test_failing_again_right_after_coming_back_is_the_same_outage(self):
        """A flapping start counts once; the state follows every change at once."""
        outages = Outages("database")
        outages.down(ConnectionRefusedError())
        outages.up()
        assert outages.is_up
        outages.down(ConnectionRefusedError())
        assert not outages.is_up
        outages.up()
        assert outages.count == 1

    async def test_an_outage_after_the_dependency_held_is_a_new_one(self):
        """Once the dependency held for a moment, the next failure is another outage."""
        outages = Outages("bus")
        outages.down()
        outages.up()
        await asyncio.sleep(FLAP_S + 0.2)  # the hold itself is what is tested
        outages.down()
        assert outages.count == 2
