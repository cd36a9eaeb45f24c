"""Errors of the accounts package, each with its wire code."""

from infra.errors import Conflict, Forbidden, InvalidInput, NotAuthenticated


class InvalidCredentials(NotAuthenticated):
    code = "invalid_credentials"
    default_message = "Username or password is wrong."


class SessionExpired(NotAuthenticated):
    code = "not_authenticated"
    default_message = "Your session has ended; please log in again."


class BadOrigin(Forbidden):
    code = "bad_origin"
    default_message = "This request did not come from Tolk's own pages."


class WrongRole(Forbidden):
    code = "forbidden"
    default_message = "Your role does not allow this."


class UsernameTaken(Conflict):
    code = "username_taken"
    default_message = "That username is already taken."


class WeakPassword(InvalidInput):
    code = "weak_password"
    default_message = "The password is too weak."


class UnknownOrganization(InvalidInput):
    code = "unknown_organization"
    default_message = "No such organisation."


class OrganizationExists(Conflict):
    code = "organization_exists"
    default_message = "An organisation of that name exists."


class InvalidScope(InvalidInput):
    code = "invalid_scope"
    default_message = "That scope does not exist or reaches nothing its user may do."


class OutOfScope(Forbidden):
    code = "insufficient_scope"
    default_message = "This API token's scope does not cover this operation."


class TokenNeedsLogin(Forbidden):
    code = "login_required"
    default_message = "API tokens are issued and revoked from a login session, not with a token."


class NotAMachineAccount(Forbidden):
    code = "not_a_machine_account"
    default_message = "Tokens for another user may only be issued for machine accounts."


class LinkNotValid(InvalidInput):
    code = "link_not_valid"
    default_message = (
        "This link has been used, has run out, or was replaced by a newer one. "
        "Ask your administration for a new link."
    )


class NoPasswordForMachines(InvalidInput):
    code = "machine_account"
    default_message = "A machine account has no password; it logs in with API tokens."


class SiteExists(Conflict):
    code = "site_exists"
    default_message = "The organisation has a site of that name."


class UnknownTimeZone(InvalidInput):
    code = "unknown_time_zone"
    default_message = "Not an IANA time zone such as Europe/Berlin."


class UnknownSite(InvalidInput):
    code = "unknown_site"
    default_message = "No active site of that id in the user's organisation."


class TerminalAccount(InvalidInput):
    code = "terminal_account"
    default_message = (
        "A terminal logs in only with its device link; add and manage it as a terminal."
    )
