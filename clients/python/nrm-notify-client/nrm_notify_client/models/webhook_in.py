from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast






T = TypeVar("T", bound="WebhookIn")



@_attrs_define
class WebhookIn:
    """ 
        Attributes:
            url (str):
            secret (None | str | Unset): `whsec_<base64>`; omitted: one is generated and returned once
            enabled (bool | Unset):  Default: True.
     """

    url: str
    secret: None | str | Unset = UNSET
    enabled: bool | Unset = True





    def to_dict(self) -> dict[str, Any]:
        url = self.url

        secret: None | str | Unset
        if isinstance(self.secret, Unset):
            secret = UNSET
        else:
            secret = self.secret

        enabled = self.enabled


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "url": url,
        })
        if secret is not UNSET:
            field_dict["secret"] = secret
        if enabled is not UNSET:
            field_dict["enabled"] = enabled

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        url = d.pop("url")

        def _parse_secret(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        secret = _parse_secret(d.pop("secret", UNSET))


        enabled = d.pop("enabled", UNSET)

        webhook_in = cls(
            url=url,
            secret=secret,
            enabled=enabled,
        )

        return webhook_in

