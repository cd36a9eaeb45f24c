"""Errors of dispatch, each with its wire code."""

from infra.errors import Conflict, InvalidInput, NotFound


class UnknownLanguage(InvalidInput):
    code = "unknown_language"
    default_message = "No interpreter in the roster speaks this language."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, field="language")


class RequestNotFound(NotFound):
    code = "not_found"
    default_message = "No such request."


class NotCancellable(Conflict):
    code = "not_cancellable"
    default_message = "The request can no longer be cancelled."


class OfferNotFound(NotFound):
    code = "not_found"
    default_message = "No such offer."


class OfferExpired(Conflict):
    code = "offer_expired"
    default_message = "The offer has expired."


class OfferTaken(Conflict):
    code = "offer_taken"
    default_message = "Another interpreter has taken this request."


class OfferRevoked(Conflict):
    code = "offer_revoked"
    default_message = "The offer was withdrawn."


class OfferDeclined(Conflict):
    code = "offer_declined"
    default_message = "You have declined this offer."


class NotAvailable(Conflict):
    code = "not_available"
    default_message = "You cannot take a call in your current status."


class BookingNotFound(NotFound):
    code = "not_found"
    default_message = "No such booking."


class BookingTaken(Conflict):
    code = "booking_taken"
    default_message = "Another interpreter has claimed this booking."


class BookingCancelled(Conflict):
    code = "booking_cancelled"
    default_message = "The booking was cancelled."


class BookingStarted(Conflict):
    code = "booking_started"
    default_message = "The appointment has started; the booking can no longer change."


class BookingOver(Conflict):
    code = "booking_over"
    default_message = "The booked time has passed."


class BookingOverlaps(Conflict):
    code = "booking_overlaps"
    default_message = "You have claimed another booking at this time."


class TooLateToGiveBack(Conflict):
    code = "too_late_to_give_back"
    default_message = "It is too close to the appointment to give the booking back."


class BookingNotDue(Conflict):
    code = "booking_not_due"
    default_message = "The appointment cannot be started at this time."


class BookingNotClaimed(Conflict):
    code = "booking_not_claimed"
    default_message = "The booking is not claimed by you."
