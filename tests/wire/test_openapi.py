"""/api/openapi.json describes the socket too (`x-socket`): every message both ways, with
the schema its model gives, so a client generated from the document reads what is sent."""

from __future__ import annotations

from wire import message_models
from wire.client import AnyClientMessage
from wire.server import AnyServerMessage


class TestSocketInOpenApi:
    async def test_every_message_both_ways_has_its_schema(self, client):
        """Each direction is a union tagged by `type` whose members have the models' fields."""
        document = await (await client.get("/api/openapi.json")).json()
        socket = document["x-socket"]
        assert socket["path"] == "/ws"
        schemas = document["components"]["schemas"]
        for way, union in (("client", AnyClientMessage), ("server", AnyServerMessage)):
            models = message_models(union)
            mapping = socket[way]["discriminator"]["mapping"]
            assert set(mapping) == set(models)
            for kind, model in models.items():
                schema = schemas[mapping[kind].rsplit("/", 1)[1]]
                assert schema["properties"]["type"]["const"] == kind
                names = {f.alias or n for n, f in model.model_fields.items()}
                assert set(schema["properties"]) == names

    async def test_server_messages_require_what_is_always_sent(self, client):
        """A server message's schema requires every field but those left out when None."""
        document = await (await client.get("/api/openapi.json")).json()
        schemas = document["components"]["schemas"]
        assert schemas["PresenceUpdated"]["required"] == ["type", "status"]
        # A relayed signal names a call or a consultation room: either may be left out.
        assert schemas["RelayedSignal"]["required"] == ["type", "from", "data"]
