"""Request bodies that more than one route module takes: what a counsellor asks for."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from accounts.views import Identity, OrganizationView
from dispatch import service


class PreferencesBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gender: str | None = Field(default=None, min_length=1, max_length=20)
    specialization: str | None = Field(default=None, min_length=1, max_length=50)
    audio_only: bool = False
    required: bool = False
    """Make gender and specialization hard requirements instead of wishes that relax."""

    def wishes(self) -> service.Wishes:
        """The counsellor's wishes, as dispatch takes them."""
        return service.Wishes(
            gender=self.gender,
            specialization=self.specialization,
            audio_only=self.audio_only,
            required=self.required,
        )


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    language: str = Field(min_length=1, max_length=35)
    preferences: PreferencesBody = Field(default_factory=PreferencesBody)

    def ask(self, identity: Identity) -> service.Ask:
        """The request as the caller asks it, billed to their organisation, from their site."""
        return service.Ask(
            counsellor_id=identity.user_id,
            organization=OrganizationView(
                id=identity.organization_id, name=identity.organization_name
            ),
            language=self.language,
            wishes=self.preferences.wishes(),
            site_id=identity.site_id,
        )
