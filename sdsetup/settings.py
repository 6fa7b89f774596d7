"""Settings, resolved once: flag > environment (SDSETUP_*) > config file > default.

The result is a frozen dataclass passed to whatever needs it; nothing reads the environment or the
config file behind its back. `ENV_VARS` lists every variable honoured (shown in the README).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from sdsetup import __version__
from sdsetup.errors import usage_error
from sdsetup.i18n import t

ENV_VARS = {
    "SDSETUP_CONFIG": "path of the config file (default: the platform's config dir, sdsetup/config.toml)",
    "SDSETUP_PROXY": "proxy URL for every network call (http, https, socks5, socks5h)",
    "SDSETUP_MIRROR": "mirror profile name (official, cn, auto, or one from the config file), or CHANNEL=URL items, comma-separated",
    "SDSETUP_CA_BUNDLE": "a PEM file of extra trusted CAs (corporate TLS inspection)",
    "SDSETUP_CONNECTIONS": "connections per download (default 8)",
    "SDSETUP_TIMEOUT": "seconds to wait for a connection or for bytes before retrying (default 30)",
    "SDSETUP_CACHE_DIR": "where downloads and the hash cache live",
    "SDSETUP_LOG_DIR": "where each run's log file is written",
    "SDSETUP_DEBUG": "1 to show tracebacks",
    "SDSETUP_LANG": "language of messages: en or zh-CN (default: the config file's lang, then the system's language)",
    "SDSETUP_MACHINE_FACTS": "a `check --json` document to use instead of probing (replay a user's machine)",
}

CHANNELS = ("pypi", "torch", "github", "huggingface")

# Top-level keys of the config file; `profiles` and `rewrite` are validated by the mirror layer.
CONFIG_KEYS = ("proxy", "mirror", "ca_bundle", "connections", "timeout", "cache_dir", "log_dir", "profiles", "rewrite", "lang")
_STRING_KEYS = ("proxy", "mirror", "ca_bundle", "cache_dir", "log_dir", "lang")


@dataclass(frozen=True)
class Settings:
    proxy: str | None = None
    mirror: str | None = None  # profile name; None means the config default, then "official"
    mirror_overrides: tuple[tuple[str, str], ...] = ()  # (channel, url) from --mirror CHANNEL=URL
    ca_bundle: str | None = None
    connections: int = 8
    timeout: float = 30.0
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "sdsetup")
    log_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "sdsetup" / "logs")
    config_path: Path | None = None
    config: Mapping[str, Any] = field(default_factory=dict)  # the parsed config file (mirror profiles, …)
    quiet: bool = False
    debug: bool = False
    machine_facts: Path | None = None
    user_agent: str = f"sdsetup/{__version__}"

    def with_(self, **changes: Any) -> "Settings":
        return replace(self, **changes)


def default_config_path(env: Mapping[str, str]) -> Path:
    if env.get("SDSETUP_CONFIG"):
        return Path(env["SDSETUP_CONFIG"]).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("sdsetup", appauthor=False)) / "config.toml"


def _default_cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("sdsetup", appauthor=False))


_HAS_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def parse_mirror_option(values: list[str] | tuple[str, ...] | None) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """Split --mirror values into one profile name and CHANNEL=URL overrides.

    `--mirror cn --mirror huggingface=https://hf.example` picks the cn profile with one channel changed.
    """
    profile: str | None = None
    overrides: list[tuple[str, str]] = []
    for raw in values or ():
        for item in str(raw).split(","):
            item = item.strip()
            if not item:
                continue
            # A URL (https://h/b?x=1) is a base URL for every channel even when its query holds an `=`.
            if "=" in item and not _HAS_SCHEME.match(item):
                from sdsetup.redact import redact_text

                channel, url = item.split("=", 1)
                channel = channel.strip().lower()
                shown = redact_text(item)  # a mirror URL may carry a login
                if channel not in CHANNELS:
                    raise usage_error(
                        t("--mirror {shown}: unknown channel '{channel}'", shown=shown, channel=channel),
                        t("channels are {channels}; e.g. --mirror huggingface=https://hf-mirror.com", channels=', '.join(CHANNELS)),
                    )
                if not url.strip().startswith(("http://", "https://", "file://")) and not Path(url.strip()).is_absolute():
                    raise usage_error(t("--mirror {shown}: '{url}' is not a URL", shown=shown, url=redact_text(url)), t("give an http(s):// URL"))
                overrides.append((channel, url.strip()))
            else:
                if profile and profile != item:
                    raise usage_error(t("--mirror given two profiles: {profile} and {item}", profile=profile, item=item), t("pick one profile"))
                profile = item
    return profile, tuple(overrides)


def check_config_keys(config: Mapping[str, Any], origin: str) -> None:
    """A typo in the config file must not silently drop a setting: name the key and the likely one."""
    import difflib

    for key, value in config.items():
        if key not in CONFIG_KEYS:
            close = difflib.get_close_matches(key, CONFIG_KEYS, n=1)
            raise usage_error(
                t("{origin}: unknown key '{key}'", origin=origin, key=key),
                (t("did you mean '{close}'? known keys: {config_keys}", close=close[0], config_keys=", ".join(CONFIG_KEYS)) if close
                 else t("known keys: {config_keys}", config_keys=", ".join(CONFIG_KEYS))),
            )
        if key in _STRING_KEYS and not isinstance(value, str):
            raise usage_error(t("{origin}: key '{key}' must be a string, not {name}", origin=origin, key=key, name=type(value).__name__), t("write it in quotes, e.g. {key} = \"…\"", key=key))


def _positive_int(value: Any, origin: str) -> int:
    if isinstance(value, bool):  # TOML `true` is not a count
        raise usage_error(t("{origin}: '{value}' is not a whole number", origin=origin, value=value), t("give a number such as 8"))
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise usage_error(t("{origin}: '{value}' is not a whole number", origin=origin, value=value), t("give a number such as 8")) from None
    if number < 1 or number > 64:
        raise usage_error(t("{origin}: {number} is out of range", origin=origin, number=number), t("use a number from 1 to 64"))
    return number


def _positive_float(value: Any, origin: str) -> float:
    if isinstance(value, bool):
        raise usage_error(t("{origin}: '{value}' is not a number", origin=origin, value=value), t("give seconds, e.g. 30"))
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise usage_error(t("{origin}: '{value}' is not a number", origin=origin, value=value), t("give seconds, e.g. 30")) from None
    if number != number or number in (float("inf"), float("-inf")):  # nan, inf: no deadline would ever pass
        raise usage_error(t("{origin}: '{value}' is not a finite number of seconds", origin=origin, value=value), t("give seconds, e.g. 30"))
    if number <= 0:
        raise usage_error(t("{origin}: must be more than 0", origin=origin), t("give seconds, e.g. 30"))
    return number


def validate_proxy(url: str, origin: str) -> str:
    from urllib.parse import urlsplit

    from sdsetup.redact import redact_url

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise usage_error(t("{origin}: '{url}' is not a valid proxy URL", origin=origin, url=redact_url(url)), t("use e.g. http://127.0.0.1:7890")) from None
    if parts.scheme not in ("http", "https", "socks5", "socks5h", "socks4", "socks4a") or not parts.hostname:
        raise usage_error(
            t("{origin}: '{url}' is not a proxy URL sdsetup can use", origin=origin, url=redact_url(url)),
            t("use http://HOST:PORT, https://HOST:PORT, socks5://HOST:PORT or socks5h://HOST:PORT"),
        )
    del port
    return url


def load_settings(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve settings. `flags` holds CLI values, None meaning "not given"."""
    from sdsetup.tomlcompat import load_toml

    flags = dict(flags or {})
    env = os.environ if env is None else env
    config_path = Path(flags["config"]).expanduser() if flags.get("config") else default_config_path(env)
    # A file named by --config or SDSETUP_CONFIG must be there; only the default one may be absent.
    named_by = "--config" if flags.get("config") else "SDSETUP_CONFIG" if env.get("SDSETUP_CONFIG") else None
    fix = "check the --config path" if named_by == "--config" else "create that file, or point SDSETUP_CONFIG at the right one (or unset it)"
    config: dict[str, Any] = {}
    if config_path.is_dir():
        if named_by:
            raise usage_error(t("config file {config_path} (from {named_by}) is a folder", config_path=config_path, named_by=named_by), t("give the path of the file itself: {fix}", fix=fix))
    elif config_path.exists():  # a regular file, or /dev/null for "no config"
        config = load_toml(config_path, "config file")
    elif named_by:
        raise usage_error(t("config file not found: {config_path} (from {named_by})", config_path=config_path, named_by=named_by), fix)
    origin_cfg = f"config file {config_path}"
    check_config_keys(config, origin_cfg)

    def pick(flag: str, env_name: str, key: str) -> tuple[Any, str]:
        if flags.get(flag) not in (None, "", (), []):
            return flags[flag], f"--{flag.replace('_', '-')}"
        if env.get(env_name):
            return env[env_name], env_name
        if config.get(key) not in (None, ""):
            return config[key], f"{origin_cfg}: key '{key}'"
        return None, ""

    proxy, proxy_origin = pick("proxy", "SDSETUP_PROXY", "proxy")
    if proxy:
        proxy = validate_proxy(str(proxy), proxy_origin)

    mirror_values = flags.get("mirror") or ()
    if not mirror_values and env.get("SDSETUP_MIRROR"):
        mirror_values = [env["SDSETUP_MIRROR"]]
    if not mirror_values and config.get("mirror"):
        mirror_values = [str(config["mirror"])]
    profile, overrides = parse_mirror_option(list(mirror_values))
    # Per-channel environment variables, e.g. SDSETUP_MIRROR_HUGGINGFACE=https://hf-mirror.com
    env_overrides = []
    for channel in CHANNELS:
        value = env.get(f"SDSETUP_MIRROR_{channel.upper()}")
        if value and channel not in {c for c, _ in overrides}:
            env_overrides.append((channel, value))
    overrides = tuple(env_overrides) + overrides

    ca_bundle, ca_origin = pick("ca_bundle", "SDSETUP_CA_BUNDLE", "ca_bundle")
    if ca_bundle and not Path(str(ca_bundle)).expanduser().is_file():
        raise usage_error(t("{ca_origin}: CA bundle not found: {ca_bundle}", ca_origin=ca_origin, ca_bundle=ca_bundle), t("give the path of a PEM file"))

    connections, conn_origin = pick("connections", "SDSETUP_CONNECTIONS", "connections")
    timeout, timeout_origin = pick("timeout", "SDSETUP_TIMEOUT", "timeout")
    cache_dir, _ = pick("cache_dir", "SDSETUP_CACHE_DIR", "cache_dir")
    log_dir, _ = pick("log_dir", "SDSETUP_LOG_DIR", "log_dir")
    cache_path = Path(str(cache_dir)).expanduser() if cache_dir else _default_cache_dir()
    machine_facts = env.get("SDSETUP_MACHINE_FACTS")

    return Settings(
        proxy=proxy,
        mirror=profile,
        mirror_overrides=overrides,
        ca_bundle=str(Path(str(ca_bundle)).expanduser()) if ca_bundle else None,
        connections=_positive_int(connections, conn_origin) if connections is not None else 8,
        timeout=_positive_float(timeout, timeout_origin) if timeout is not None else 30.0,
        cache_dir=cache_path,
        log_dir=Path(str(log_dir)).expanduser() if log_dir else cache_path / "logs",
        config_path=config_path,
        config=config,
        quiet=bool(flags.get("quiet")),
        debug=bool(flags.get("debug")) or env.get("SDSETUP_DEBUG", "") not in ("", "0"),
        machine_facts=Path(machine_facts) if machine_facts else None,
    )


def config_lang(argv: list[str], env: Mapping[str, str]) -> str | None:
    """The config file's `lang` (the file `--config`/SDSETUP_CONFIG/the platform dir names), cheaply.

    Read before Typer parses anything, for `--help` too; the file is parsed only when it mentions
    `lang`, and errors in it are left for settings.load_settings to report.
    """
    path: str | None = None
    for index, arg in enumerate(argv):
        if arg == "--config" and index + 1 < len(argv):
            path = argv[index + 1]
        elif arg.startswith("--config="):
            path = arg.split("=", 1)[1]
    try:
        if path is None:
            config_path = default_config_path(env)
        else:
            config_path = Path(path).expanduser()
        data = config_path.read_bytes()
    except (OSError, ValueError):
        return None
    if b"lang" not in data:
        return None
    try:
        from sdsetup.tomlcompat import loads_toml

        value = loads_toml(data.decode("utf-8"), str(config_path)).get("lang")
    except Exception:  # a broken config file is reported by load_settings, with its hint
        return None
    return value if isinstance(value, str) else None
