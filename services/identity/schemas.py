"""Identity's request and response bodies."""

from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, model_validator

from contracts.vocabulary import AgencyId, Role
from services.identity import service
from services.identity.models import Agency, Client, Person

# check_redirect_uri's rule as a pattern (a little narrower: host names in ASCII, as punycode).
REDIRECT_URI_PATTERN = (
    r"^(https://[A-Za-z0-9.-]+|http://(127\.0\.0\.1|localhost|\[::1\]))(:[0-9]{1,5})?"
    r"([/?][^#\x00-\x20\x7f]*)?$"
)
RedirectUri = Annotated[
    str,
    Field(max_length=2000, pattern=REDIRECT_URI_PATTERN),
    AfterValidator(service.check_redirect_uri),
]

Username = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._@-]{0,99}$")]


class AgencyOut(BaseModel):
    id: str
    name: str
    type: str
    regions: list[str]
    language: str
    disabled: bool

    @classmethod
    def of(cls, row: Agency) -> "AgencyOut":
        return cls.model_validate(row, from_attributes=True)


class ClientIn(BaseModel):
    model_config = {
        "extra": "forbid",
        # _signs_in_or_has_roles, stated in the schema.
        "json_schema_extra": {
            "anyOf": [
                {"required": ["roles"], "properties": {"roles": {"minItems": 1}}},
                {"required": ["redirect_uris"], "properties": {"redirect_uris": {"minItems": 1}}},
            ]
        },
    }

    client_id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$")]
    agency: AgencyId
    roles: list[Role] = Field(default=[], description="Roles for client-credentials tokens")
    redirect_uris: Annotated[
        list[RedirectUri],
        Field(max_length=10, description="For a client that signs people in: exact URIs"),
    ] = []
    post_logout_redirect_uris: Annotated[list[RedirectUri], Field(max_length=10)] = []

    @model_validator(mode="after")
    def _signs_in_or_has_roles(self) -> "ClientIn":
        if not self.roles and not self.redirect_uris:
            raise ValueError("a client needs roles, redirect_uris or both")
        return self


class ClientOut(BaseModel):
    client_id: str
    agency: str
    roles: list[str]
    disabled: bool
    redirect_uris: list[str] = []
    post_logout_redirect_uris: list[str] = []

    @classmethod
    def of(cls, row: Client) -> "ClientOut":
        return cls.model_validate(row, from_attributes=True)


class ClientWithSecret(ClientOut):
    client_secret: str = Field(description="Shown once; store it now")


class ClientList(BaseModel):
    items: list[ClientOut]


class AgencyList(BaseModel):
    items: list[AgencyOut]


class KeyOut(BaseModel):
    kid: str


class PersonIn(BaseModel):
    model_config = {"extra": "forbid"}

    username: Username
    agency: AgencyId
    roles: Annotated[list[Role], Field(min_length=1)]
    password: Annotated[str | None, Field(max_length=256)] = Field(
        default=None, description="Omit to have one generated (returned once)"
    )


class PersonOut(BaseModel):
    id: str
    username: str
    agency: str
    roles: list[str]
    disabled: bool
    second_factor: bool = Field(description="Whether a second factor is enrolled")

    @classmethod
    def of(cls, row: Person) -> "PersonOut":
        return cls(
            id=row.id,
            username=row.username,
            agency=row.agency,
            roles=list(row.roles),
            disabled=row.disabled,
            second_factor=row.totp_confirmed,
        )


class PersonWithPassword(PersonOut):
    password: str | None = Field(default=None, description="A generated password, shown once")


class PersonList(BaseModel):
    items: list[PersonOut]


class PersonReset(BaseModel):
    model_config = {"extra": "forbid"}

    password: Annotated[str | None, Field(max_length=256)] = Field(
        default=None, description="The new password"
    )
    new_password: bool = Field(default=False, description="Generate a new password")
    second_factor: bool = Field(
        default=False, description="Forget the second factor: enrolled again at next sign-in"
    )
