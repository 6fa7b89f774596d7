"""Mirror profiles as data: the candidates of each channel, loaded from the bundled
`manifests/mirrors.toml` and merged with the user's config file, validated with errors that name the
file, the key and the problem. Pure: no network; the only file read is the bundled TOML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Mapping
from urllib.parse import urlsplit

from sdsetup.errors import ExitCode, SdsetupError, usage_error
from sdsetup.redact import redact_url
from sdsetup.settings import CHANNELS, Settings
from sdsetup.i18n import t

BUILTIN_ORIGIN = "manifests/mirrors.toml (built-in)"
SCHEMA = 1

# The canonical hosts. Rewriting recognises these URLs; a channel is "mirrored" when its first
# candidate is anything else.
GITHUB = "https://github.com/"
RAW_GITHUB = "https://raw.githubusercontent.com/"
PYPI_SIMPLE = "https://pypi.org/simple/"
PYPI_FILES = "https://files.pythonhosted.org/packages/"
TORCH_BASE = "https://download.pytorch.org/whl/"
TORCH_TEMPLATE = TORCH_BASE + "{tag}/"
HF_ENDPOINT = "https://huggingface.co"
OFFICIAL_URL = {"pypi": PYPI_SIMPLE, "torch": TORCH_TEMPLATE, "github": GITHUB, "huggingface": HF_ENDPOINT}

GITHUB_KINDS = ("git", "archive", "release", "raw")
LAYOUTS = ("simple", "find-links")
STYLES = ("prefix", "host")
_CANDIDATE_KEYS = {
    "pypi": {"name", "url", "files", "connections"},
    "torch": {"name", "url", "layout", "connections"},
    "github": {"name", "url", "style", "raw", "serves", "connections"},
    "huggingface": {"name", "url", "connections"},
}
MAX_CONNECTIONS = 16
_PROFILE_KEYS = {"description", *CHANNELS}
_PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Mirror:
    """One candidate source for one channel."""

    channel: str
    name: str
    url: str  # pypi: index root; torch: template with {tag}; github: replacement base; huggingface: endpoint
    layout: str | None = None  # torch: simple | find-links
    style: str | None = None  # github: prefix | host
    raw: str | None = None  # github host style: replacement for https://raw.githubusercontent.com/
    files: str | None = None  # pypi: replacement for https://files.pythonhosted.org/packages/
    serves: tuple[str, ...] = GITHUB_KINDS  # github: what it can deliver
    connections: int | None = None  # the most parallel connections the engine may open here (None: its own choice)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": self.name, "url": redact_url(self.url)}
        if self.connections:
            doc["connections"] = self.connections
        if self.layout:
            doc["layout"] = self.layout
        if self.style:
            doc["style"] = self.style
        if self.raw:
            doc["raw"] = redact_url(self.raw)
        if self.files:
            doc["files"] = redact_url(self.files)
        if self.channel == "github" and self.serves != GITHUB_KINDS:
            doc["serves"] = list(self.serves)
        return doc

    def git_base(self) -> str:
        """What https://github.com/ becomes for git (the insteadOf target)."""
        return self.url + GITHUB if self.style == "prefix" else self.url


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    channels: Mapping[str, tuple[Mirror, ...]]
    source: str  # "built-in", "config file", or "built-in + config file"

    def to_json(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "source": self.source,
            "channels": {ch: [m.to_json() for m in self.channels[ch]] for ch in CHANNELS},
        }


@dataclass(frozen=True)
class RewriteRule:
    prefix: str
    replace: str

    def to_json(self) -> dict[str, str]:
        return {"prefix": redact_url(self.prefix), "replace": redact_url(self.replace)}


@dataclass(frozen=True)
class Catalog:
    """Everything the mirror layer knows: profiles (built-in merged with the user's), rules, probe URLs."""

    profiles: Mapping[str, Profile]
    rewrites: tuple[RewriteRule, ...]
    probe_urls: Mapping[str, str]
    rate_urls: Mapping[str, str] = field(default_factory=dict)  # a real file per channel, to time its byte host

    def profile(self, name: str) -> Profile:
        if name not in self.profiles:
            from sdsetup.redact import redact_text

            known = ", ".join(["auto", *self.profiles])
            shown = redact_text(name)  # an ftp:// or mistyped URL lands here with its login
            if "://" in name:
                raise usage_error(t("unknown mirror profile '{profile}'", profile=shown),
                                  t("a mirror URL must start with http://, https:// or file://"))
            raise usage_error(
                t("unknown mirror profile '{profile}'", profile=shown),
                t("pick one of: {known}; or define [profiles.{profile}] in your config file (`sdsetup mirrors list` shows them)",
                  known=known, profile=shown),
            )
        return self.profiles[name]


# ---------------------------------------------------------------------------------------------------
# Loading and validating profiles


def _problem(origin: str, key: str, problem: str, hint: str | None = None) -> SdsetupError:
    return usage_error(
        f"{origin}: {key}: {problem}",
        hint or t("fix that entry (the format is described in docs/mirrors.md)"),
    )


def check_url(value: Any, origin: str, key: str, *, template: bool = False) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _problem(origin, key, f"expected a URL string, got {type(value).__name__} {value!r}")
    url = value.strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise _problem(origin, key, f"'{redact_url(url)}' is not a valid URL") from None
    if parts.scheme not in ("http", "https", "file"):
        raise _problem(origin, key, f"'{redact_url(url)}' must start with https://, http:// or file://")
    if parts.scheme != "file" and not parts.hostname:
        raise _problem(origin, key, f"'{redact_url(url)}' has no host name")
    if any(c.isspace() for c in url) or any(ord(c) < 32 for c in url):
        raise _problem(origin, key, f"'{redact_url(url)}' contains a space or a control character",
                       "write a space in a URL as %20, and give one URL per value")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise _problem(origin, key, f"'{redact_url(url)}' has a query string or fragment (?…/#…)",
                       "a mirror or base URL is a prefix that paths are appended to: leave out ?… and #…")
    placeholders = set(re.findall(r"\{([^}]*)\}", url))
    if template:
        if placeholders != {"tag"}:
            raise _problem(
                origin, key, f"'{redact_url(url)}' must contain {{tag}} (and no other placeholder)",
                "write the torch index with {tag} where cu121/cpu/rocm6.1 goes, e.g. https://host/whl/{tag}/",
            )
    elif placeholders or "{" in url or "}" in url:
        raise _problem(origin, key, f"'{redact_url(url)}' contains a placeholder; only torch URLs take {{tag}}")
    return url


def with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def _default_name(url: str) -> str:
    parts = urlsplit(url.replace("{tag}", "tag"))
    return parts.hostname or url


def parse_candidate(channel: str, raw: Any, origin: str, key: str) -> Mirror:
    """One candidate from TOML: a URL string (defaults: torch simple, github prefix) or a table."""
    if isinstance(raw, str):
        raw = {"url": raw}
    if not isinstance(raw, Mapping):
        raise _problem(origin, key, f"expected a URL string or a table, got {type(raw).__name__}")
    unknown = set(raw) - _CANDIDATE_KEYS[channel]
    if unknown:
        raise _problem(
            origin, key, f"unknown key(s) {', '.join(sorted(unknown))}",
            f"a {channel} candidate takes: {', '.join(sorted(_CANDIDATE_KEYS[channel]))}",
        )
    if "url" not in raw:
        raise _problem(origin, key, "missing 'url'")
    url = check_url(raw["url"], origin, f"{key}.url", template=channel == "torch")
    name = raw.get("name", _default_name(url))
    if not isinstance(name, str) or not name.strip():
        raise _problem(origin, f"{key}.name", f"expected a non-empty string, got {name!r}")
    connections = raw.get("connections")
    if connections is not None and (type(connections) is not int or not 1 <= connections <= MAX_CONNECTIONS):
        raise _problem(origin, f"{key}.connections", f"expected a whole number from 1 to {MAX_CONNECTIONS}, got {connections!r}")
    mirror = _parse_kind(channel, raw, origin, key, url, name)
    return replace(mirror, connections=connections) if connections else mirror


def _parse_kind(channel: str, raw: Mapping[str, Any], origin: str, key: str, url: str, name: str) -> Mirror:
    if channel == "pypi":
        files = raw.get("files")
        return Mirror(channel, name, with_slash(url), files=with_slash(check_url(files, origin, f"{key}.files")) if files is not None else None)
    if channel == "torch":
        layout = raw.get("layout", "simple")
        if layout not in LAYOUTS:
            raise _problem(origin, f"{key}.layout", f"{layout!r} is not one of {', '.join(LAYOUTS)}",
                           "simple = a PEP 503 index (pip --extra-index-url); find-links = one flat page of wheel links")
        return Mirror(channel, name, with_slash(url), layout=layout)
    if channel == "github":
        style = raw.get("style", "prefix")
        if style not in STYLES:
            raise _problem(origin, f"{key}.style", f"{style!r} is not one of {', '.join(STYLES)}",
                           "prefix = https://PROXY/https://github.com/…; host = the proxy replaces https://github.com/")
        serves = raw.get("serves", list(GITHUB_KINDS))
        if not isinstance(serves, list) or not serves or any(s not in GITHUB_KINDS for s in serves):
            raise _problem(origin, f"{key}.serves", f"{serves!r} must be a non-empty list drawn from {', '.join(GITHUB_KINDS)}")
        raw_base = raw.get("raw")
        if raw_base is not None and style != "host":
            raise _problem(origin, f"{key}.raw", "only a host-style candidate takes 'raw' (a prefix proxy serves raw files itself)")
        return Mirror(
            channel, name, with_slash(url), style=style,
            raw=with_slash(check_url(raw_base, origin, f"{key}.raw")) if raw_base is not None else None,
            serves=tuple(k for k in GITHUB_KINDS if k in serves),
        )
    return Mirror(channel, name, url.rstrip("/"))


def _parse_channel(channel: str, value: Any, origin: str, key: str) -> tuple[Mirror, ...]:
    if isinstance(value, (str, Mapping)):
        value = [value]
    if not isinstance(value, list):
        raise _problem(origin, key, f"expected a list of candidates, got {type(value).__name__}")
    if not value:
        raise _problem(origin, key, "needs at least one candidate", "list one URL, or leave the channel out to inherit it")
    return tuple(parse_candidate(channel, item, origin, f"{key}[{i}]") for i, item in enumerate(value))


def _parse_profiles(raw: Any, origin: str, base: Mapping[str, Profile], source: str) -> dict[str, Profile]:
    if not isinstance(raw, Mapping):
        raise _problem(origin, "profiles", f"expected a table of profiles, got {type(raw).__name__}")
    profiles = dict(base)
    for name, body in raw.items():
        key = f"profiles.{name}"
        if name == "auto" or not _PROFILE_NAME.match(str(name)):
            raise _problem(origin, key, f"'{name}' cannot be a profile name",
                           "use letters, digits, '.', '_' or '-' (and not 'auto', which means: probe and decide)")
        if not isinstance(body, Mapping):
            raise _problem(origin, key, f"expected a table, got {type(body).__name__}")
        unknown = set(body) - _PROFILE_KEYS
        if unknown:
            raise _problem(origin, key, f"unknown key(s) {', '.join(sorted(unknown))}",
                           f"a profile takes: description, {', '.join(CHANNELS)}")
        description = body.get("description", "")
        if not isinstance(description, str):
            raise _problem(origin, f"{key}.description", "expected a string")
        parent = profiles.get(name) or profiles.get("official")
        channels: dict[str, tuple[Mirror, ...]] = {}
        for channel in CHANNELS:
            if channel in body:
                channels[channel] = _parse_channel(channel, body[channel], origin, f"{key}.{channel}")
            elif parent is not None:
                channels[channel] = parent.channels[channel]
            else:
                raise _problem(origin, f"{key}.{channel}", "missing (every built-in profile lists all four channels)")
        merged_source = source if name not in profiles else f"{profiles[name].source} + {source}"
        profiles[name] = Profile(name, description or (profiles[name].description if name in profiles else ""), channels, merged_source)
    return profiles


def _parse_rewrites(raw: Any, origin: str) -> tuple[RewriteRule, ...]:
    if isinstance(raw, Mapping):
        raw = [raw]
    if not isinstance(raw, list):
        raise _problem(origin, "rewrite", f"expected [[rewrite]] tables, got {type(raw).__name__}")
    rules = []
    for i, item in enumerate(raw):
        key = f"rewrite[{i}]"
        if not isinstance(item, Mapping):
            raise _problem(origin, key, f"expected a table with prefix and replace, got {type(item).__name__}")
        unknown = set(item) - {"prefix", "replace"}
        if unknown or "prefix" not in item or "replace" not in item:
            raise _problem(origin, key, "needs exactly the keys 'prefix' and 'replace'",
                           'e.g. [[rewrite]]\\nprefix = "https://example.com/models/"\\nreplace = "https://mirror.example/models/"')
        prefix = check_url(item["prefix"], origin, f"{key}.prefix")
        replace = check_url(item["replace"], origin, f"{key}.replace")
        rules.append(RewriteRule(prefix, replace))
    return tuple(rules)


def parse_catalog(builtin: Mapping[str, Any], config: Mapping[str, Any] | None = None, *, config_origin: str = "config file") -> Catalog:
    """Validate the bundled profiles, then merge the user's config file over them."""
    origin = BUILTIN_ORIGIN
    if builtin.get("schema") != SCHEMA:
        raise SdsetupError(t("{origin}: schema: expected {schema}, got {got}", origin=origin, schema=SCHEMA,
                             got=repr(builtin.get("schema"))),
                           t("reinstall sdsetup (its bundled files do not match this version)"), ExitCode.INTERNAL)
    probe = builtin.get("probe")
    if not isinstance(probe, Mapping) or set(probe) != set(CHANNELS):
        raise _problem(origin, "probe", f"needs one URL per channel ({', '.join(CHANNELS)})")
    probe_urls = {ch: check_url(probe[ch], origin, f"probe.{ch}") for ch in CHANNELS}
    rate = builtin.get("rate", {})
    if not isinstance(rate, Mapping) or not set(rate) <= set(CHANNELS):
        raise _problem(origin, "rate", f"at most one URL per channel ({', '.join(CHANNELS)})")
    rate_urls = {ch: check_url(rate[ch], origin, f"rate.{ch}") for ch in CHANNELS if ch in rate}
    profiles = _parse_profiles(builtin.get("profiles", {}), origin, {}, "built-in")
    for required in ("official", "cn"):
        if required not in profiles:
            raise _problem(origin, f"profiles.{required}", "missing")
    rewrites: tuple[RewriteRule, ...] = ()
    config = config or {}
    if "profiles" in config:
        profiles = _parse_profiles(config["profiles"], config_origin, profiles, "config file")
    if "rewrite" in config:
        rewrites = _parse_rewrites(config["rewrite"], config_origin)
    return Catalog(profiles, rewrites, probe_urls, rate_urls)


@lru_cache(maxsize=1)
def builtin_toml() -> dict[str, Any]:
    from importlib.resources import files

    from sdsetup.tomlcompat import loads_toml

    text = files("sdsetup.manifests").joinpath("mirrors.toml").read_text(encoding="utf-8")
    return loads_toml(text, BUILTIN_ORIGIN)


def load_catalog(settings: Settings) -> Catalog:
    origin = f"config file {settings.config_path}" if settings.config_path else "config file"
    return parse_catalog(builtin_toml(), settings.config, config_origin=origin)

