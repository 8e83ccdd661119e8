"""The building blocks of the schema: the base model, value types, secrets given three ways, lists.

Every value type here is an ``Annotated`` pydantic type that checks one value
with a function of ``relay.config.values`` and says in the JSON Schema what it
takes as input (a string, mostly). Anything that reads a file or the
environment takes it from the ``LoadContext`` of the load in progress.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, ClassVar, NamedTuple, Self, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ModelWrapValidatorHandler,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError, PydanticKnownError

from relay.config import values
from relay.config.context import load_context
from relay.config.errors import CUSTOM, details, fail, problem
from relay.config.values import Address, Invalid
from relay.secret import Secret

__all__ = [
    "AccessTokenId", "AppName", "CaFile", "CertificateFile", "EnvSecret", "FileSecret", "HostName", "InlineSecret",
    "Label", "ListenAddress", "LiveStreamName", "PrivateKeyFile",
    "FromList", "SecretFromEnv", "SecretFromFile", "SecretSources", "Section", "TargetUrlText", "WebhookUrl",
    "as_tuple", "not_null", "text_value", "validate_items",
]

_M = TypeVar("_M", bound=BaseModel)


class Section(BaseModel):
    """A mapping of the config file: frozen, strict, no unknown fields, values never echoed."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        strict=True,  # "1935" is not a port, 1 is not "true", 3.5 is not a byte count
        allow_inf_nan=False,
        hide_input_in_errors=True,  # a value may be a stream key
        use_attribute_docstrings=True,  # each field's docstring is its description
        validate_default=False,
    )

    @model_validator(mode="wrap")
    @classmethod
    def _written(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        # The checks of which fields are written run on the raw mapping, so that they are
        # reported even when a field's value is wrong too (an "after" validator would not run).
        if not isinstance(data, dict):
            return handler(data)
        found, data = cls.check_written(data)
        try:
            model = handler(data)
        except ValidationError as err:
            fail([*details(err), *found])
        if found:
            fail(found)
        return model

    @classmethod
    def check_written(cls, data: dict[str, Any]) -> tuple[list[InitErrorDetails], dict[str, Any]]:
        """Problems with which fields ``data`` sets, and the data to validate the fields of."""
        return [], data


def _invalid(message: str) -> PydanticCustomError:
    return PydanticCustomError(CUSTOM, "{message}", {"message": message})


def text_value(value: object) -> str:
    """A non-blank string, as a plain validator sees its input."""
    if not isinstance(value, str):
        raise PydanticKnownError("string_type")
    if not value.strip():
        raise _invalid("must not be empty")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise _invalid("must not be empty")
    return value


def _checked(check: Callable[[str], object]) -> Callable[[str], str]:
    """An after-validator that runs ``check`` on the string and keeps the string."""

    def validate(value: str) -> str:
        try:
            check(value)
        except Invalid as err:
            raise _invalid(str(err)) from None
        return value

    return validate


def _converted(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    """An after-validator that replaces the string with ``convert`` of it."""

    def validate(value: str) -> Any:
        try:
            return convert(value)
        except Invalid as err:
            raise _invalid(str(err)) from None

    return validate


def as_tuple(value: object) -> object:
    """YAML gives lists; the frozen config holds tuples."""
    return tuple(value) if isinstance(value, list) else value


def _printable(value: str) -> str:
    if not value.isprintable():
        raise _invalid("must not contain control characters")
    return value


Label = Annotated[str, AfterValidator(_not_blank), AfterValidator(_printable)]


def _token_id(value: str) -> str:
    if not 1 <= len(value) <= 128 or ":" in value or any(c.isspace() for c in value):
        raise _invalid("must be 1 to 128 printable characters without a colon or a space")
    return value


AccessTokenId = Annotated[str, AfterValidator(_not_blank), AfterValidator(_printable), AfterValidator(_token_id)]
AppName = Annotated[str, AfterValidator(_not_blank), AfterValidator(_checked(values.app_name))]
LiveStreamName = Annotated[str, AfterValidator(_not_blank),
                           AfterValidator(_checked(values.live_stream_name))]
HostName = Annotated[str, AfterValidator(_not_blank), AfterValidator(_converted(values.host_name))]
TargetUrlText = Annotated[str, AfterValidator(_not_blank), AfterValidator(_checked(values.target_url))]
WebhookUrl = Annotated[str, AfterValidator(_not_blank), AfterValidator(_checked(values.webhook_url))]


def _address(value: object) -> Address:
    try:
        return values.host_port(text_value(value))
    except Invalid as err:
        raise _invalid(str(err)) from None


ListenAddress = Annotated[Address, PlainValidator(_address, json_schema_input_type=str),
                          PlainSerializer(str, return_type=str)]


def _readable(kind: str) -> Callable[[object, ValidationInfo], str]:
    def validate(value: object, info: ValidationInfo) -> str:
        try:
            return values.readable(load_context(info).path(text_value(value)), kind)
        except Invalid as err:
            raise _invalid(str(err)) from None

    return validate


def _ca_file(value: object, info: ValidationInfo) -> str:
    try:
        return values.ca_file(load_context(info).path(text_value(value)))
    except Invalid as err:
        raise _invalid(str(err)) from None


# A file that must exist and open: its absolute path (relative = from the config's folder).
CertificateFile = Annotated[str, PlainValidator(_readable("certificate"), json_schema_input_type=str)]
PrivateKeyFile = Annotated[str, PlainValidator(_readable("key"), json_schema_input_type=str)]
CaFile = Annotated[str, PlainValidator(_ca_file, json_schema_input_type=str)]


# --- secrets --------------------------------------------------------------------------------------


class SecretFromFile(NamedTuple):
    """A key read from a file (``*_file``): the file's absolute path, and the key."""

    path: str
    secret: Secret


class SecretFromEnv(NamedTuple):
    """A key read from an environment variable (``*_env``): its name, and the key."""

    name: str
    secret: Secret


def _inline_secret(value: object, info: ValidationInfo) -> Secret:
    if not isinstance(value, str):
        raise PydanticKnownError("string_type")
    try:
        return load_context(info).keep(Secret(values.stream_key(value)))
    except Invalid as err:
        raise _invalid(str(err)) from None


def _secret_from_file(value: object, info: ValidationInfo) -> SecretFromFile:
    context = load_context(info)
    try:
        found = values.key_from_file(text_value(value), context.environ, context.base_dir)
    except Invalid as err:
        raise _invalid(str(err)) from None
    return SecretFromFile(found.path, context.keep(Secret(found.key)))


def _secret_from_env(value: object, info: ValidationInfo) -> SecretFromEnv:
    context = load_context(info)
    try:
        name = text_value(value)
        return SecretFromEnv(name, context.keep(Secret(values.key_from_env(name, context.environ))))
    except Invalid as err:
        raise _invalid(str(err)) from None


def _fingerprint(secret: Secret) -> str:
    return f"sha256:{secret.fingerprint}"


# A dump of the config (model_dump, JSON) shows keys as fingerprints, files by path,
# variables by name: never a key.
InlineSecret = Annotated[Secret, PlainValidator(_inline_secret, json_schema_input_type=str),
                         PlainSerializer(_fingerprint, return_type=str)]
FileSecret = Annotated[SecretFromFile, PlainValidator(_secret_from_file, json_schema_input_type=str),
                       PlainSerializer(lambda found: found.path, return_type=str)]
EnvSecret = Annotated[SecretFromEnv, PlainValidator(_secret_from_env, json_schema_input_type=str),
                      PlainSerializer(lambda found: found.name, return_type=str)]


def not_null(schema: dict[str, Any]) -> None:
    """JSON Schema of an optional secret source: a string when written, never null."""
    variants = schema.pop("anyOf", [])
    schema.pop("default", None)
    schema.update(next((v for v in variants if v.get("type") != "null"), {"type": "string"}))


class SecretSources(Section):
    """A section whose secret may be given inline, in a file or in an environment variable.

    Subclasses declare the three fields (inline under an alias, so that the
    attribute of the secret's own name can be the key whichever way it came)
    and name them in ``secret_fields``.
    """

    secret_fields: ClassVar[tuple[str, str, str]]
    secret_required: ClassVar[bool] = True

    @classmethod
    def check_written(cls, data: dict[str, Any]) -> tuple[list[InitErrorDetails], dict[str, Any]]:
        found, data = super().check_written(data)
        given = [name for name in cls.secret_fields if name in data]
        mistakes: list[InitErrorDetails] = []
        if len(given) > 1 or (cls.secret_required and not given):
            how = "exactly one" if cls.secret_required else "at most one"
            written = f" (found {', '.join(given)})" if given else ""
            mistakes.append(problem((), f"needs {how} of {', '.join(cls.secret_fields)}{written}"))
        elif given and data[given[0]] is None:
            mistakes.append(problem((given[0],), "has no value; give one or remove the line"))
        if mistakes:
            # Read none of them: which one was meant is unknown.
            data = {key: value for key, value in data.items() if key not in cls.secret_fields}
        return found + mistakes, data

    def given_field(self) -> str:
        """Which of the three fields gave the secret, named as in the file ("" if none)."""
        inline, file, env = self.secret_fields
        for name, info in type(self).model_fields.items():
            if (info.alias or name) == inline and getattr(self, name) is not None:
                return inline
        if getattr(self, file, None) is not None:
            return file
        return env if getattr(self, env, None) is not None else ""

    @staticmethod
    def pick(inline: Secret | None, file: SecretFromFile | None, env: SecretFromEnv | None) -> Secret | None:
        """The secret, whichever of the three ways it was given."""
        if inline is not None:
            return inline
        if file is not None:
            return file.secret
        return env.secret if env is not None else None


# --- lists ----------------------------------------------------------------------------------------


def validate_items(
    model: type[_M], items: list[object] | tuple[object, ...], info: ValidationInfo,
) -> tuple[dict[int, _M], list[InitErrorDetails]]:
    """Validate each item on its own: the valid ones (by index) and the problems of the others.

    Checks across items (unique names, keys, labels) then see every valid item,
    even when a sibling is broken, so that all problems come out in one run.
    """
    valid: dict[int, _M] = {}
    found: list[InitErrorDetails] = []
    for index, item in enumerate(items):
        try:
            valid[index] = model.model_validate(item, context=info.context)
        except ValidationError as err:
            found.extend(details(err, (index,)))
    return valid, found


# On a tuple field: YAML gives lists, the frozen config holds tuples.
FromList = BeforeValidator(as_tuple)
