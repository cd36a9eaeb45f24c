"""The socket's messages as they go on the wire: the exact JSON clients rely on."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from accounts.models import Role
from accounts.views import OrganizationView, UserView
from infra import jsonio
from wire.client import CLIENT_MESSAGE, CLIENT_MESSAGE_TYPES, Signal
from wire.objects import (
    BookingState,
    BookingView,
    CallView,
    LanguageFigures,
    OfferView,
    PartyView,
    PreferencesView,
    Presence,
    RequestState,
    RequestView,
    SitePlace,
)
from wire.rooms import (
    GuestView,
    ParticipantView,
    RoomCounsellorView,
    RoomRole,
    RoomState,
    RoomView,
)
from wire.server import (
    SERVER_MESSAGE,
    SERVER_MESSAGE_TYPES,
    BookingUpdated,
    CallJoined,
    CallUpdated,
    ErrorMessage,
    Hello,
    LanguagesUpdated,
    LanguagesWatching,
    OfferMade,
    OfferRevocation,
    PeerPresence,
    Pong,
    PresenceUpdated,
    RelayedSignal,
    RequestUpdated,
    RoomJoined,
    RoomParticipant,
    RoomUpdated,
    ServerMessage,
    relayed_signal,
)

NOON = datetime(2026, 3, 2, 12, 0, 0, 250_000, tzinfo=UTC)
USER = UserView(
    id="u1",
    username="anna",
    display_name="Anna",
    role=Role.COUNSELLOR,
    organization=OrganizationView(id="o1", name="Jobcenter"),
)
PREFERENCES = PreferencesView(gender="female", audio_only=True)
REQUEST = RequestView(
    id="q1",
    language="ti",
    preferences=PREFERENCES,
    state=RequestState.QUEUED,
    created_at=NOON,
    updated_at=NOON,
    queue_position=1,
    eta_s=15,
    expires_at=NOON,
    waves=1,
)
OFFER = OfferView(
    id="f1",
    request_id="q1",
    language="ti",
    organization=OrganizationView(id="o1", name="Jobcenter"),
    expires_at=NOON,
    preferences=PREFERENCES,
)
CALL = CallView(
    id="c1",
    request_id="q1",
    language="ti",
    counsellor=PartyView(id="u1", display_name="Anna"),
    interpreter=PartyView(id="u2", display_name=None, agency="Sprachbrücke", number=7),
    state="ended",
    created_at=NOON,
    connected_at=NOON,
    ended_at=NOON,
    end_reason="hangup",
    duration_s=0,
    billable_s=60,
    amount_cents=150,
    currency="EUR",
)
GUEST_PARTICIPANT = ParticipantView(
    id="g1", role=RoomRole.GUEST, display_name="Amal", language="ar", present=True
)
DESCRIPTION = {"description": {"type": "offer", "sdp": "v=0\r\n"}}

# Each message, and its JSON exactly as clients have been reading it.
WIRE: list[tuple[ServerMessage, bytes]] = [
    (
        Hello(user=USER, heartbeat_s=15, server_time=NOON),
        b'{"type":"hello","user":{"id":"u1","username":"anna","display_name":"Anna",'
        b'"role":"counsellor","organization":{"id":"o1","name":"Jobcenter"},'
        b'"active":true,"machine":false,"site_id":null},"heartbeat_s":15,'
        b'"server_time":"2026-03-02T12:00:00.250Z"}',
    ),
    (Pong(), b'{"type":"pong"}'),
    (Pong(ref="r1"), b'{"type":"pong","ref":"r1"}'),
    (
        ErrorMessage(code="rate_limited", message="Too many messages; slow down."),
        b'{"type":"error","code":"rate_limited","message":"Too many messages; slow down."}',
    ),
    (
        ErrorMessage(
            code="invalid_message",
            message="call_id: Field required",
            ref="r2",
            fields=[{"field": "call_id", "problem": "Field required", "code": "missing"}],
        ),
        b'{"type":"error","code":"invalid_message","message":"call_id: Field required",'
        b'"fields":[{"field":"call_id","problem":"Field required","code":"missing"}],'
        b'"ref":"r2"}',
    ),
    (
        ErrorMessage(code="too_many_open_requests", message="Too many.", limit=3),
        b'{"type":"error","code":"too_many_open_requests","message":"Too many.","limit":3}',
    ),
    (
        PresenceUpdated(status=Presence.AVAILABLE),
        b'{"type":"presence.updated","status":"available"}',
    ),
    (
        PresenceUpdated(status=Presence.AWAY, reason="missed_offers"),
        b'{"type":"presence.updated","status":"away","reason":"missed_offers"}',
    ),
    (
        PresenceUpdated(status=Presence.AWAY, ref="r3"),
        b'{"type":"presence.updated","status":"away","ref":"r3"}',
    ),
    (
        LanguagesUpdated(
            languages=[LanguageFigures(tag="ti", online=2, available=1, queued=0, eta_s=None)]
        ),
        b'{"type":"languages.updated","languages":[{"tag":"ti","online":2,"available":1,'
        b'"queued":0,"eta_s":null}]}',
    ),
    (
        LanguagesWatching(watch=False, ref="r4"),
        b'{"type":"languages.watching","watch":false,"ref":"r4"}',
    ),
    (
        RequestUpdated(request=REQUEST),
        b'{"type":"request.updated","request":{"id":"q1","language":"ti",'
        b'"preferences":{"gender":"female","specialization":null,"audio_only":true,'
        b'"required":false},"state":"queued","created_at":"2026-03-02T12:00:00.250Z",'
        b'"updated_at":"2026-03-02T12:00:00.250Z","queue_position":1,"eta_s":15,'
        b'"call_id":null,"end_reason":null,"expires_at":"2026-03-02T12:00:00.250Z","waves":1}}',
    ),
    (
        OfferMade(offer=OFFER),
        b'{"type":"offer","offer":{"id":"f1","request_id":"q1","language":"ti",'
        b'"organization":{"id":"o1","name":"Jobcenter"},"expires_at":"2026-03-02T12:00:00.250Z",'
        b'"preferences":{"gender":"female","specialization":null,"audio_only":true,'
        b'"required":false}}}',
    ),
    (
        CallUpdated(call=CALL, ref="r5"),
        b'{"type":"call.updated","call":{"id":"c1","request_id":"q1","language":"ti",'
        b'"counsellor":{"id":"u1","display_name":"Anna","agency":null,"number":null},'
        b'"interpreter":{"id":"u2","display_name":null,"agency":"Sprachbr\xc3\xbccke","number":7},'
        b'"state":"ended","created_at":"2026-03-02T12:00:00.250Z","audio_only":false,'
        b'"connected_at":"2026-03-02T12:00:00.250Z","ended_at":"2026-03-02T12:00:00.250Z",'
        b'"end_reason":"hangup","duration_s":0,"billable_s":60,"amount_cents":150,'
        b'"currency":"EUR"},"ref":"r5"}',
    ),
    (
        OfferRevocation(offer_id="f1", reason="taken"),
        b'{"type":"offer.revoked","offer_id":"f1","reason":"taken"}',
    ),
    (
        CallJoined(
            call_id="c1",
            polite=True,
            peer_present=False,
            ice_servers=[
                {"urls": ["stun:stun.example:3478"]},
                {"urls": ["turn:turn.example:3478"], "username": "9:u1", "credential": "x=="},
            ],
            ref="r4",
        ),
        b'{"type":"call.joined","call_id":"c1","polite":true,"peer_present":false,'
        b'"ice_servers":[{"urls":["stun:stun.example:3478"]},{"urls":["turn:turn.example:3478"],'
        b'"username":"9:u1","credential":"x=="}],"ref":"r4"}',
    ),
    (
        RelayedSignal(call_id="c1", sender="u1", data=DESCRIPTION),
        b'{"type":"signal","call_id":"c1","from":"u1",'
        b'"data":{"description":{"type":"offer","sdp":"v=0\\r\\n"}}}',
    ),
    (
        PeerPresence(call_id="c1", present=False),
        b'{"type":"peer","call_id":"c1","present":false}',
    ),
    (
        RelayedSignal(room_id="r1", sender="g1", data={"candidate": None}),
        b'{"type":"signal","room_id":"r1","from":"g1","data":{"candidate":null}}',
    ),
    (
        RoomJoined(
            room_id="r1",
            self_id="g1",
            participants=[GUEST_PARTICIPANT],
            polite_to=["u1"],
            ice_servers=[],
            ref="r5",
        ),
        b'{"type":"room.joined","room_id":"r1","self_id":"g1","participants":[{"id":"g1",'
        b'"role":"guest","display_name":"Amal","language":"ar","number":null,"present":true,'
        b'"call_id":null}],"polite_to":["u1"],"ice_servers":[],"ref":"r5"}',
    ),
    (
        RoomParticipant(room_id="r1", participant=GUEST_PARTICIPANT, polite=False, left=False),
        b'{"type":"room.participant","room_id":"r1","participant":{"id":"g1","role":"guest",'
        b'"display_name":"Amal","language":"ar","number":null,"present":true,"call_id":null},'
        b'"polite":false,"left":false}',
    ),
    (
        RoomUpdated(
            room=RoomView(
                id="r1",
                state=RoomState.OPEN,
                counsellor=RoomCounsellorView(id="u1", display_name="Anna"),
                participants=[],
                created_at=NOON,
            )
        ),
        b'{"type":"room.updated","room":{"id":"r1","state":"open","counsellor":{"id":"u1",'
        b'"display_name":"Anna"},"participants":[],"request_id":null,"call_id":null,'
        b'"created_at":"2026-03-02T12:00:00.250Z","ended_at":null,"end_reason":null}}',
    ),
    (
        BookingUpdated(
            booking=BookingView(
                id="b1",
                language="ar-SY",
                preferences=PreferencesView(),
                state=BookingState.CLAIMED,
                local_start="2026-03-29T10:30",
                time_zone="Europe/Berlin",
                starts_at=NOON,
                duration_min=60,
                organization=OrganizationView(id="o1", name="Jobcenter"),
                site=SitePlace(id="s1", name="Infopoint"),
                counsellor=PartyView(id="u1", display_name="Anna"),
                interpreter=PartyView(id="u2", display_name="Layla"),
                escalated=False,
                give_back_until=NOON,
                request_id=None,
                created_at=NOON,
                updated_at=NOON,
            ),
            reason="claimed",
        ),
        b'{"type":"booking.updated","booking":{"id":"b1","language":"ar-SY","preferences":'
        b'{"gender":null,"specialization":null,"audio_only":false,"required":false},'
        b'"state":"claimed","local_start":"2026-03-29T10:30","time_zone":"Europe/Berlin",'
        b'"starts_at":"2026-03-02T12:00:00.250Z","duration_min":60,"organization":{"id":"o1",'
        b'"name":"Jobcenter"},"site":{"id":"s1","name":"Infopoint"},"counsellor":{"id":"u1",'
        b'"display_name":"Anna","agency":null,'
        b'"number":null},"interpreter":{"id":"u2","display_name":"Layla","agency":null,'
        b'"number":null},"escalated":false,"give_back_until":"2026-03-02T12:00:00.250Z",'
        b'"request_id":null,"created_at":"2026-03-02T12:00:00.250Z",'
        b'"updated_at":"2026-03-02T12:00:00.250Z"},"reason":"claimed"}',
    ),
]


class TestServerMessages:
    @pytest.mark.parametrize(("message", "expected"), WIRE, ids=lambda v: getattr(v, "type", ""))
    def test_message_goes_on_the_wire_as_clients_read_it(self, message, expected):
        """Each message's JSON: its fields in order, `type` first, omitted fields absent."""
        assert jsonio.dumps(message) == expected

    @pytest.mark.parametrize(("message", "expected"), WIRE, ids=lambda v: getattr(v, "type", ""))
    def test_a_client_reads_each_message_back(self, message, expected):
        """What the server sends parses as the message it was (as the headless peers read it)."""
        assert SERVER_MESSAGE.validate_json(expected) == message

    def test_every_server_message_is_pinned_here(self):
        """No server message type goes without its JSON pinned above."""
        assert {m.type for m, _ in WIRE} == SERVER_MESSAGE_TYPES

    def test_relayed_signal_fast_encoding_is_the_models(self):
        """The relay's own encoding of `signal` is byte for byte the model's."""
        model = RelayedSignal(call_id="c1", sender="u1", data=DESCRIPTION)
        assert relayed_signal("c1", "u1", DESCRIPTION) == jsonio.dumps(model)


class TestClientMessages:
    def test_type_list_is_the_unions(self):
        """The types the socket accepts are exactly the union's members' types."""
        for kind in CLIENT_MESSAGE_TYPES:
            where = {"room_id": "r", "peer": "p"} if kind.startswith("room.") else {"call_id": "c"}
            fields = {"status": "away", "state": "failed", "watch": True}
            fields["data"] = {"candidate": None}
            assert CLIENT_MESSAGE.validate_python({"type": kind, **where, **fields}).type == kind
        assert {
            "ping",
            "presence",
            "languages.watch",
            "call.join",
            "signal",
            "call.media",
            "call.hangup",
            "room.join",
            "room.media",
            "room.leave",
        } == CLIENT_MESSAGE_TYPES

    def test_a_signal_names_a_call_or_a_room_with_its_recipient(self):
        """`signal` carries call_id, or room_id with to; never both, never neither."""
        data = {"candidate": None}
        ok = CLIENT_MESSAGE.validate_python(
            {"type": "signal", "room_id": "r", "to": "g1", "data": data}
        )
        assert isinstance(ok, Signal)
        assert (ok.room_id, ok.to, ok.call_id) == ("r", "g1", None)
        for wrong in (
            {"data": data},
            {"room_id": "r", "data": data},
            {"call_id": "c", "room_id": "r", "to": "g1", "data": data},
        ):
            with pytest.raises(ValueError, match="signal"):
                CLIENT_MESSAGE.validate_python({"type": "signal", **wrong})

    def test_signal_data_may_name_its_sessions(self):
        """`data` may carry the sender's `session` and the `to_session` it answers, relayed
        as they are; anything else beside the description or candidate is refused."""
        tagged = {"candidate": None, "session": "k3x9", "to_session": "p0q2"}
        ok = CLIENT_MESSAGE.validate_python({"type": "signal", "call_id": "c", "data": tagged})
        assert isinstance(ok, Signal)
        assert ok.data == tagged
        for wrong in (
            {"candidate": None, "session": ""},
            {"candidate": None, "to_session": "x" * 65},
            {"candidate": None, "session": 7},
            {"session": "k3x9"},
            {"candidate": None, "peer": "p"},
        ):
            with pytest.raises(ValueError, match=r"session|exactly one"):
                CLIENT_MESSAGE.validate_python({"type": "signal", "call_id": "c", "data": wrong})

    def test_a_guest_says_hello_as_a_guest(self):
        """A guest's `hello.user` is the guest object, and reads back as one."""
        hello = Hello(
            user=GuestView(id="g1", display_name="Amal", room_id="r1"),
            heartbeat_s=15,
            server_time=NOON,
        )
        wire = jsonio.dumps(hello)
        assert b'"user":{"id":"g1","role":"guest","display_name":"Amal","room_id":"r1"' in wire
        assert SERVER_MESSAGE.validate_json(wire) == hello
