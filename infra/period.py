"""A period as the usage exports and the figures take it: `from` and `to`, each a date (the
start of that day in the centre's time zone) or an RFC 3339 timestamp, `to` exclusive."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from infra.errors import InvalidInput


class PeriodParams(BaseModel):
    """The query parameters `from` and `to`; what a missing one means is the endpoint's."""

    model_config = ConfigDict(populate_by_name=True)

    from_: str | None = Field(
        default=None,
        alias="from",
        max_length=40,
        description="A date (start of that day in the server's time zone) or RFC 3339",
    )
    to: str | None = Field(default=None, max_length=40, description="End, exclusive")


def parse_bounds(
    start: str | None, end: str | None, zone: ZoneInfo, names: tuple[str, str] = ("from", "to")
) -> tuple[datetime | None, datetime | None]:
    """The bounds given (None for one not given), read by parse_bound under `names`."""
    return (
        parse_bound(start, zone, names[0]) if start else None,
        parse_bound(end, zone, names[1]) if end else None,
    )


def parse_bound(text: str, zone: ZoneInfo, field: str) -> datetime:
    """A period bound: a date (the start of that day in `zone`) or an RFC 3339 timestamp."""
    value = text.strip()
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), zone).astimezone(UTC)
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise InvalidInput(
                f"{field}: the timestamp needs a Z or an offset",
                field=field,
                problem_code="needs_offset",
            )
        return moment.astimezone(UTC)
    except ValueError:
        raise InvalidInput(
            f"{field}: give a date (2026-01-01) or an RFC 3339 timestamp",
            field=field,
            problem_code="bad_date",
        ) from None
    except OverflowError:  # in UTC it would fall before year 1 or after 9999
        raise InvalidInput(
            f"{field}: outside the years 1 to 9999", field=field, problem_code="bad_date"
        ) from None


def check_period(start: datetime | None, end: datetime | None) -> None:
    """Refuse a period that ends before it starts."""
    if start is not None and end is not None and end <= start:
        raise InvalidInput("to: must be after from", field="to", problem_code="not_after_from")
