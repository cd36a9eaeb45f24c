"""Tariffs as admins manage them: listing, adding and editing price lists."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, field_validator
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from accounts.errors import UnknownOrganization
from accounts.models import Organization
from billing.models import Tariff
from infra.errors import InvalidInput, NotFound
from interpreters.languages import normalize_tag


class UnknownTariff(NotFound):
    code = "unknown_tariff"
    default_message = "There is no such tariff."


class TariffView(BaseModel):
    """A tariff on the wire."""

    id: str
    name: str
    organization_id: str | None
    languages: list[str]
    """The language group; empty for every language."""
    unit_s: int
    minimum_s: int
    price_per_unit_cents: int
    currency: str
    valid_from: date
    created_at: datetime
    in_house: bool
    """Bills the calls interpreted by in-house staff, and only those."""

    @field_validator("languages", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        # A row holds the group as one space-separated string (None for every language).
        if value is None or isinstance(value, str):
            return value.split() if value else []
        return value


_REQUIRED = (
    "name",
    "unit_s",
    "minimum_s",
    "price_per_unit_cents",
    "currency",
    "valid_from",
    "in_house",
)
"""What a tariff cannot be without: a change may not set these to null."""


def tariff_view(row: Tariff) -> TariffView:
    """A tariff row as the wire shows it."""
    return TariffView.model_validate(row, from_attributes=True)


def language_group(tags: list[str] | None) -> str | None:
    """Normalised, sorted, space-separated tags as stored; None for every language."""
    if not tags:
        return None
    normalised: set[str] = set()
    for index, tag in enumerate(tags):
        normalised.add(normalize_tag(tag, f"languages.{index}"))
    return " ".join(sorted(normalised))


async def _check_organization(session: AsyncSession, organization_id: str | None) -> None:
    if organization_id is not None and await session.get(Organization, organization_id) is None:
        raise UnknownOrganization(field="organization_id")


async def list_tariffs(session: AsyncSession, organization_id: str | None = None) -> list[Tariff]:
    """Tariffs, the default ones first, then by organisation and newest valid_from first."""
    query = select(Tariff)
    if organization_id is not None:
        query = query.where(Tariff.organization_id == organization_id)
    result = await session.exec(
        query.order_by(
            col(Tariff.organization_id).is_not(None),
            col(Tariff.organization_id),
            col(Tariff.valid_from).desc(),
            col(Tariff.name),
            col(Tariff.id),
        )
    )
    return list(result.all())


async def create_tariff(
    session: AsyncSession, values: dict[str, Any], languages: list[str] | None, now: datetime
) -> Tariff:
    """Add a tariff (values are already validated field by field)."""
    await _check_organization(session, values.get("organization_id"))
    tariff = Tariff(**values, languages=language_group(languages), created_at=now)
    session.add(tariff)
    await session.flush()
    return tariff


async def update_tariff(
    session: AsyncSession, tariff_id: str, changes: dict[str, Any], languages: list[str] | None
) -> Tariff:
    """Edit a tariff. Ended calls keep what they were billed: their records hold a copy."""
    for required in _REQUIRED:
        if required in changes and changes[required] is None:
            raise InvalidInput(f"{required} may not be null", field=required)
    tariff = await session.get(Tariff, tariff_id)
    if tariff is None:
        raise UnknownTariff()
    if "organization_id" in changes:
        await _check_organization(session, changes["organization_id"])
    for name, value in changes.items():
        setattr(tariff, name, value)
    if languages is not None:
        tariff.languages = language_group(languages)
    session.add(tariff)
    await session.flush()
    return tariff
