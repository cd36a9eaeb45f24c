class TestSmoke:
    async def test_happy(self, desk):
        """smoke"""
        c = await desk.counsellor()
        i = await desk.interpreter(["ar"])
        req = await desk.ask(c, "ar")
        assert req["state"] == "offering"
        offer = (await i.next_event("offer"))["offer"]
        status, body = await i.post(f"/api/offers/{offer['id']}/accept")
        assert status == 200, body
        print(body)
        ev = await c.next_event("call.updated")
        assert ev["call"]["state"] == "connecting"
