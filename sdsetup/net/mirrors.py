"""Mirrors: profiles as data, URL rewriting, and the `MirrorPlan` every git, pip and download call uses.

Everything here is pure apart from the injected probe; the profiles are loaded and validated in
`mirror_profiles.py`, automatic routing runs catalogue -> measure (`measure.py`) -> decide (`decide.py`, pure)
-> cache (`routecache.py`), wired by `autoroute.py`, and this module's plan hands the result on; `measure.py`
does the probing (this module never imports it at module level: the probe is passed in or built on first
use). `select_mirrors()` is the one entry point: it resolves the profile (`--mirror NAME`, `SDSETUP_MIRROR`,
the config file's `mirror`, default `auto`: route each channel by a real probe, on first use), the
per-channel overrides (`--mirror CHANNEL=URL`, `SDSETUP_MIRROR_<CHANNEL>`) and a base URL.

Channels: `pypi`, `torch`, `github`, `huggingface` (see the comment at the top of mirrors.toml), plus
user rewrite rules (`[[rewrite]] prefix=…, replace=…` in the config file) for any other host.

How a plan reaches each tool:
- downloads: `file_urls(canonical)` gives the engine mirrors first and the canonical URL last;
- git: `git_config_args()` (`-c http.proxy=…`, `-c url.<mirror>.insteadOf=https://github.com/`) and
  `git_env()` (`GIT_TERMINAL_PROMPT=0`, …) per invocation; the user's global git config is never written.
  Use either insteadOf (the default) or explicit failover over `git_urls()` with
  `git_config_args(insteadof=False)`: with both, insteadOf would also rewrite the canonical fallback;
- pip: `pip_index_args()` (the mirror as the primary `--index-url`), `torch_index_args(tag)`
  (`--extra-index-url` for a PEP 503 mirror, `--find-links` for a flat page), `pip_env()`;
  a SOCKS proxy needs PySocks inside the venv that runs pip (`pip_needs_pysocks`);
- the web UI at run time: `webui_env()` (HF_ENDPOINT + HF_HUB_DISABLE_XET=1, PIP_INDEX_URL,
  TORCH_INDEX_URL/PIP_FIND_LINKS, git insteadOf through GIT_CONFIG_COUNT, HTTP(S)_PROXY).

Credentials: a proxy password never goes on a command line (other local users can read argv): with a
password, the proxy travels as `PIP_PROXY` in `pip_env()` and as `http.proxy` through `GIT_CONFIG_*` in
`git_env()`; without one, as `--proxy`/`-c http.proxy=` in the argument lists. `to_json()`, warnings and
errors show URLs redacted. `webui_env()` must carry the full proxy URL because the web UI's own pip, git
and huggingface_hub need it; whoever writes it into webui-user.sh/.bat tells the user (`proxy_has_credentials`).

One base URL for every channel (`MirrorPlan.single_base(url)`, `--mirror URL`, and `--mirror-url` of
offline bundles). Under BASE (http(s):// or file://) the layout is:

    BASE/pypi/simple/                       PEP 503 index (pip --index-url)
    BASE/pypi/packages/…                    files.pythonhosted.org/packages/… (optional)
    BASE/torch/{tag}/                       PEP 503 index per torch tag (cu121, cpu, rocm6.1, …)
    BASE/git/<owner>/<repo>.git             git repositories (github.com/<owner>/<repo>.git)
    BASE/git/<owner>/<repo>/archive/…       archive zips, as on github.com
    BASE/git/<owner>/<repo>/releases/download/<tag>/<file>   release assets
    BASE/raw/<owner>/<repo>/<ref>/<path>    raw.githubusercontent.com files
    BASE/hf/<repo>/resolve/<rev>/<file>     Hugging Face endpoint = BASE/hf
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping
from urllib.parse import urlsplit

from sdsetup.errors import ExitCode, SdsetupError, usage_error
from sdsetup.net.mirror_profiles import (
    GITHUB,
    GITHUB_KINDS,
    HF_ENDPOINT,
    OFFICIAL_URL,
    PYPI_FILES,
    PYPI_SIMPLE,
    RAW_GITHUB,
    TORCH_BASE,
    Catalog,
    Mirror,
    RewriteRule,
    check_url,
    load_catalog,
    parse_candidate,
    with_slash,
)
from sdsetup.net.autoroute import ProbeFn, targets as probe_targets  # noqa: F401 (the names callers know)
from sdsetup.net.decide import Route
from sdsetup.net.rewrite import _ordered_unique, _split_github, _split_torch, canonical_of, channel_of, rewrite_for, rewrite_github, torch_index_url  # noqa: F401 (public here too)
from sdsetup.net.gitlogin import HELPER as _GIT_HELPER, config_env as _git_config_env, origin as _origin, split_login as _split_login
from sdsetup.net.session import trust_store
from sdsetup.redact import redact_url, secrets_in_url
from sdsetup.settings import CHANNELS, Settings
from sdsetup.i18n import t

if TYPE_CHECKING:
    import requests

_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


# ---------------------------------------------------------------------------------------------------
# The plan


def _has_secret(url: str | None) -> bool:
    return bool(secrets_in_url(url))


@dataclass(frozen=True)
class MirrorPlan:
    """Where each channel goes and how: the one object git, pip, the engine and the web UI env read."""

    profile: str
    channels: Mapping[str, tuple[Mirror, ...]]  # ordered; the first candidate is the one pip/git use
    proxy: str | None = None  # --proxy / SDSETUP_PROXY / config (may carry a password: never shown)
    rewrites: tuple[RewriteRule, ...] = ()
    notes: tuple[str, ...] = ()  # how `auto` or overrides decided, for people
    env_proxy: bool = False  # HTTP(S)_PROXY/ALL_PROXY set in the environment (tools honour it themselves)
    base_url: str | None = None  # set for single_base plans
    _extra_warnings: tuple[str, ...] = field(default=(), repr=False)
    routes: Mapping[str, Route] = field(default_factory=dict)  # which source serves each channel, and why
    ca_bundle: str | None = None  # extra trusted CAs: to git as http.sslCAInfo, to pip as --cert

    # -- channel queries ---------------------------------------------------------------------------
    def primary(self, channel: str) -> Mirror:
        return self.channels[channel][0]

    def mirrored(self, channel: str) -> bool:
        """True when the channel's first choice is not the upstream host."""
        return self.primary(channel).url != OFFICIAL_URL[channel]

    @property
    def mirrored_channels(self) -> list[str]:
        return [ch for ch in CHANNELS if self.mirrored(ch)]

    @property
    def proxy_has_credentials(self) -> bool:
        return _has_secret(self.proxy)

    @property
    def pip_needs_pysocks(self) -> bool:
        """pip speaks SOCKS only with PySocks installed in the venv that runs it."""
        return bool(self.proxy) and urlsplit(self.proxy).scheme.startswith("socks")

    def route(self, channel: str) -> Route:
        return self.routes.get(channel) or Route(channel, self.primary(channel).name, f"mirror profile {self.profile}")

    def connection_cap(self, url: str) -> int | None:
        """The most connections the engine should open for `url`: the `connections` of the candidate
        that serves it (university mirrors block bulk downloads), None when no candidate caps it."""
        for mirrors in self.channels.values():
            for mirror in mirrors:
                if mirror.connections and any(base and url.startswith(base) for base in _bases(mirror)):
                    return mirror.connections
        return None

    def connection_cap_for(self, urls: Iterable[str]) -> int | None:
        """The cap for one file fetched from `urls` (FileSpec.max_connections): the tightest of its sources'."""
        caps = [cap for cap in (self.connection_cap(url) for url in urls) if cap]
        return min(caps) if caps else None

    @property
    def credential_urls(self) -> list[str]:
        """Every configured URL that carries a login (mirrors, rewrite targets, the proxy)."""
        urls = [u for ms in self.channels.values() for m in ms for u in _bases(m)]
        urls += [rule.replace for rule in self.rewrites]
        if self.proxy:
            urls.append(self.proxy)
        return [u for u in dict.fromkeys(urls) if _has_secret(u)]

    @property
    def secrets(self) -> list[str]:
        """The passwords and tokens of credential_urls, for redact_text(…, secrets)."""
        return [secret for url in self.credential_urls for secret in secrets_in_url(url)]

    @property
    def webui_env_has_credentials(self) -> bool:
        """True when webui_env() carries a password or token: the webui-user writer must write that file
        0600 and tell the user."""
        secrets = self.secrets
        return any(secret in value for value in self.webui_env("cpu").values() for secret in secrets)

    @property
    def warnings(self) -> list[str]:
        out = list(self._extra_warnings)
        # Automatic routing probed through the proxy: a mirror it chose is the way that worked, no warning.
        if (self.proxy or self.env_proxy) and self.profile != "auto" and self.mirrored_channels:
            which = f"the proxy {redact_url(self.proxy)}" if self.proxy else "a proxy from HTTP(S)_PROXY/ALL_PROXY"
            out.append(
                f"{which} and mirrors ({', '.join(self.mirrored_channels)}) are both active: traffic goes to the "
                "mirror through the proxy, which is often slower than either alone; if the proxy reaches the "
                "official hosts, use --mirror official, otherwise drop the proxy"
            )
        return out

    # -- downloads -----------------------------------------------------------------------------------
    def _user_rewrites(self, url: str) -> list[str | None]:
        """The config file's [[rewrite]] rules applied to `url`: they come before any profile mirror."""
        return [rule.replace + url[len(rule.prefix):] for rule in self.rewrites if url.startswith(rule.prefix)]

    def file_urls(self, canonical_url: str) -> tuple[str, ...]:
        """Mirrors first (user rewrite rules, then the channel's candidates in order), canonical last."""
        candidates: list[str | None] = self._user_rewrites(canonical_url)
        channel = channel_of(canonical_url)
        if channel:
            candidates.extend(rewrite_for(m, canonical_url) for m in self.channels[channel])
        return _ordered_unique(candidates, canonical_url)

    def sources_for(self, url: str) -> tuple[str, ...]:
        """Every source of a file a resolver picked at `url` (a wheel on a PyPI mirror's files host, a torch
        mirror's wheel): the same file on each candidate of its channel in routing order, canonical last;
        `url` alone when it is not a file the channels mirror. Only for files with a known hash: the
        engine checks each source's bytes against it."""
        url = url.split("#", 1)[0]
        canonical = url if url.startswith((PYPI_FILES, TORCH_BASE)) else None
        for channel in ("pypi", "torch"):
            if canonical is not None:
                break
            canonical = next((c for c in (canonical_of(m, url) for m in self.channels[channel]) if c), None)
        if canonical is None:
            return (url,)
        urls = self.file_urls(canonical)
        return urls if url in urls else (url, *urls)

    def source_caps(self, urls: Iterable[str]) -> tuple[tuple[str, int], ...]:
        """(url, cap) for the sources with a connection cap (FileSpec.source_caps)."""
        return tuple((u, cap) for u in urls for cap in [self.connection_cap(u)] if cap)

    # -- git -----------------------------------------------------------------------------------------
    def _git_mirror(self) -> Mirror | None:
        for mirror in self.channels["github"]:
            if "git" in mirror.serves:
                return None if mirror.git_base() == GITHUB else mirror
        return None

    def git_urls(self, clone_url: str) -> tuple[str, ...]:
        """Clone URLs to try in order (mirrors, then `clone_url`); use with git_config_args(insteadof=False)
        and git_env(). A login in a mirror URL is left out here (it would sit on git's command line):
        git_env()'s credential helper answers for that host."""
        candidates: list[str | None] = self._user_rewrites(clone_url)
        split = _split_github(clone_url)
        if split and split[0] == "git":
            candidates.extend(rewrite_github(clone_url, m) for m in self.channels["github"])
        return _ordered_unique((_split_login(u)[0] if u else u for u in candidates), clone_url)

    def _insteadof_pairs(self) -> list[tuple[str, str]]:
        pairs = []
        mirror = self._git_mirror()
        if mirror:
            pairs.append((f"url.{mirror.git_base()}.insteadOf", GITHUB))
        for rule in self.rewrites:
            pairs.append((f"url.{rule.replace}.insteadOf", rule.prefix))
        return pairs

    def git_config_args(self, *, insteadof: bool = True) -> list[str]:
        """`-c` options for one git invocation (put them before the subcommand). Nothing here carries a
        credential: those go through git_env()."""
        args: list[str] = []
        for key, value in GIT_STALL_CONFIG:
            args += ["-c", f"{key}={value}"]
        if self.ca_bundle:
            args += ["-c", f"http.sslCAInfo={self.ca_bundle}"]
        if self.proxy and not self.proxy_has_credentials:
            args += ["-c", f"http.proxy={self.proxy}"]
        if insteadof:
            for key, value in self._insteadof_pairs():
                if not _has_secret(_insteadof_base(key)):  # a mirror login goes through git_env()
                    args += ["-c", f"{key}={value}"]
        return args

    def git_env(self) -> dict[str, str]:
        """Environment for git: never prompt (a missing repo fails instead of asking for a password).
        A proxy with a password, and an insteadOf rule whose mirror URL carries a login, go here
        (GIT_CONFIG_*: git >= 2.31), never on argv: git passes the URL it fetches to git-remote-http on
        its command line, so a mirror login travels by a credential helper that reads it from this
        environment."""
        env = {"GIT_TERMINAL_PROMPT": "0", "GCM_INTERACTIVE": "never"}
        pairs: list[tuple[str, str]] = []
        if self.proxy and self.proxy_has_credentials:
            pairs.append(("http.proxy", self.proxy))
        logins = [(key, value) for key, value in self._insteadof_pairs() if _has_secret(_insteadof_base(key))]
        env.update(self._git_logins(pairs, logins))
        if pairs:
            env.update(_git_config_env(pairs))
        return env

    @staticmethod
    def _git_logins(pairs: list[tuple[str, str]], logins: list[tuple[str, str]]) -> dict[str, str]:
        """Append the insteadOf rules without their login, plus a credential helper per login, to `pairs`;
        return the variables the helper reads."""
        env = {}
        for i, (key, value) in enumerate(logins):
            bare, user, password = _split_login(_insteadof_base(key))
            pairs.append((f"url.{bare}.insteadOf", value))
            pairs.append((f"credential.{_origin(bare)}.helper", _GIT_HELPER.replace("{n}", str(i))))
            env[f"SDSETUP_GIT_USERNAME_{i}"] = user
            env[f"SDSETUP_GIT_PASSWORD_{i}"] = password
        return env

    # -- pip -----------------------------------------------------------------------------------------
    def pip_index_args(self) -> list[str]:
        """The primary index as --index-url (a mirror replaces PyPI, it is not an extra index). An index
        URL with a login goes as PIP_INDEX_URL in pip_env() instead (argv is readable by every local user)."""
        index = self.primary("pypi").url
        args = [] if _has_secret(index) else ["--index-url", index]
        args += _trusted_host_args(index)
        if self.ca_bundle:
            args += ["--cert", self.ca_bundle]
        if self.proxy and not self.proxy_has_credentials:
            args += ["--proxy", self.proxy]
        return args

    def torch_index_args(self, tag: str) -> list[str]:
        """--extra-index-url (PEP 503) or --find-links (flat page); with a login: nothing here, the URL
        goes by pip_env(torch_tag)."""
        mirror = self.primary("torch")
        url = torch_index_url(mirror, tag)
        if _has_secret(url):
            return _trusted_host_args(url)
        option = "--find-links" if mirror.layout == "find-links" else "--extra-index-url"
        return [option, url, *_trusted_host_args(url)]

    def pip_env(self, torch_tag: str | None = None) -> dict[str, str]:
        """The proxy as PIP_PROXY (works with and without a password, and stays off argv); an index or
        torch index URL that carries a login as PIP_INDEX_URL / PIP_EXTRA_INDEX_URL / PIP_FIND_LINKS."""
        env = {"PIP_PROXY": self.proxy} if self.proxy else {}
        index = self.primary("pypi").url
        if _has_secret(index):
            env["PIP_INDEX_URL"] = index
        if torch_tag:
            mirror = self.primary("torch")
            url = torch_index_url(mirror, torch_tag)
            if _has_secret(url):
                env["PIP_FIND_LINKS" if mirror.layout == "find-links" else "PIP_EXTRA_INDEX_URL"] = url
        if self.ca_bundle:
            env["PIP_CERT"] = self.ca_bundle
        return env

    # -- Hugging Face and the web UI ------------------------------------------------------------------
    @property
    def hf_endpoint(self) -> str:
        return self.primary("huggingface").url

    def webui_env(self, torch_tag: str | None = None) -> dict[str, str]:
        """Variables for webui-user.sh/.bat so the web UI's own pip, git and huggingface_hub follow the plan."""
        env: dict[str, str] = {}
        if self.mirrored("huggingface"):
            env["HF_ENDPOINT"] = self.hf_endpoint
            env["HF_HUB_DISABLE_XET"] = "1"  # xet transfers bypass HF_ENDPOINT and mirrors do not serve them
        if self.mirrored("pypi"):
            env["PIP_INDEX_URL"] = self.primary("pypi").url
            trusted = _trusted_host_args(env["PIP_INDEX_URL"])
            if trusted:
                env["PIP_TRUSTED_HOST"] = trusted[1]
        if torch_tag:
            mirror = self.primary("torch")
            url = torch_index_url(mirror, torch_tag)
            if mirror.layout == "find-links":
                env["PIP_FIND_LINKS"] = url  # A1111 passes TORCH_INDEX_URL as --extra-index-url: flat pages need -f
            else:
                env["TORCH_INDEX_URL"] = url
        # A1111 clones repositories itself at launch. A mirror login stays inside its URL here (not in a
        # bare SDSETUP_GIT_PASSWORD_n value): the install record redacts URLs, not bare values.
        pairs = self._insteadof_pairs()
        if pairs:
            env.update(_git_config_env(pairs))
        if self.proxy:
            for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
                env[name] = self.proxy
            env["NO_PROXY"] = env["no_proxy"] = "localhost,127.0.0.1,::1"  # gradio talks to itself
        return env

    # -- reporting -----------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "profile": redact_url(self.profile),
            "base_url": redact_url(self.base_url) if self.base_url else None,
            "channels": {
                ch: {
                    **self.route(ch).to_json(),
                    "mirrored": self.mirrored(ch),
                    "selected": self.primary(ch).to_json(),
                    "candidates": [m.to_json() for m in self.channels[ch]],
                }
                for ch in CHANNELS
            },
            "rewrite": [rule.to_json() for rule in self.rewrites],
            "proxy": redact_url(self.proxy) if self.proxy else None,
            "proxy_from_environment": self.env_proxy,
            "notes": list(self.notes),
            "warnings": self.warnings,
            "ca_bundle": self.ca_bundle,
            "webui_env_has_credentials": self.webui_env_has_credentials,
        }

    # -- one base URL for every channel (offline bundles, a company mirror) ---------------------------
    @classmethod
    def single_base(cls, url: str, *, proxy: str | None = None, env_proxy: bool = False,
                    rewrites: tuple[RewriteRule, ...] = ()) -> "MirrorPlan":
        """Every channel under one base, in the layout in this module's docstring."""
        base = check_url(url, "--mirror-url", "base URL").rstrip("/")
        channels = {
            "pypi": (Mirror("pypi", "base", f"{base}/pypi/simple/", files=f"{base}/pypi/packages/"),),
            "torch": (Mirror("torch", "base", f"{base}/torch/{{tag}}/", layout="simple"),),
            "github": (Mirror("github", "base", f"{base}/git/", style="host", raw=f"{base}/raw/"),),
            "huggingface": (Mirror("huggingface", "base", f"{base}/hf"),),
        }
        return cls(profile=base, channels=channels, proxy=proxy, rewrites=rewrites, env_proxy=env_proxy, base_url=base)


# A stalled host or proxy fails in about a minute instead of git's 300 s per try: below 1 kB/s for 60 s.
GIT_STALL_CONFIG = (("http.lowSpeedLimit", "1000"), ("http.lowSpeedTime", "60"))

def _insteadof_base(key: str) -> str:
    """The mirror base in a `url.<base>.insteadOf` key."""
    return key[len("url."):-len(".insteadOf")] if key.startswith("url.") and key.endswith(".insteadOf") else key


def _bases(mirror: Mirror) -> tuple[str, ...]:
    """Every URL prefix a candidate serves from."""
    base = mirror.url.split("{tag}")[0]
    return tuple(u for u in (base, mirror.files, mirror.raw) if u)


def _trusted_host_args(url: str) -> list[str]:
    """pip refuses plain-http indexes except on localhost; a user who configured one gets it trusted."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme != "http" or host in ("localhost", "127.0.0.1", "::1"):
        return []
    return ["--trusted-host", f"{host}:{parts.port}" if parts.port else host]


# ---------------------------------------------------------------------------------------------------
# Overrides and selection


def override_mirror(channel: str, url: str, catalog: Catalog | None = None) -> Mirror:
    """A candidate from `--mirror CHANNEL=URL` / `SDSETUP_MIRROR_<CHANNEL>`.

    torch: `{tag}` is appended when missing; a URL with 'pytorch-wheels' in it is a flat find-links page
    (Aliyun/SJTU naming), anything else a PEP 503 index. github: `https://P/https://github.com/` is a
    prefix proxy; a bare URL is host style when a known profile lists it so, else a prefix proxy.
    """
    origin = f"--mirror {channel}=… (or SDSETUP_MIRROR_{channel.upper()})"
    if channel not in CHANNELS:
        raise usage_error(t("{origin}: unknown channel '{channel}'", origin=origin, channel=channel),
                          t("channels are {channels}", channels=", ".join(CHANNELS)))
    url = url.strip()
    if channel == "torch":
        if "{tag}" not in url:
            url = with_slash(url) + "{tag}/"
        layout = "find-links" if "pytorch-wheels" in url else "simple"
        return parse_candidate(channel, {"url": url, "layout": layout, "name": "override"}, origin, "url")
    if channel == "github":
        if url.rstrip("/").endswith("https://github.com"):
            prefix = url.rstrip("/")[: -len("https://github.com")]
            return parse_candidate(channel, {"url": prefix, "style": "prefix", "name": "override"}, origin, "url")
        known = [m for p in (catalog.profiles.values() if catalog else ()) for m in p.channels["github"]]
        for mirror in known:
            if mirror.url == with_slash(url):
                return Mirror("github", "override", mirror.url, style=mirror.style, raw=mirror.raw, serves=mirror.serves)
        return parse_candidate(channel, {"url": url, "style": "prefix", "name": "override"}, origin, "url")
    return parse_candidate(channel, {"url": url, "name": "override"}, origin, "url")


def looks_like_url(name: str | None) -> bool:
    return bool(name) and str(name).startswith(("http://", "https://", "file://"))


def env_has_proxy(env: Mapping[str, str]) -> bool:
    return any(env.get(name) for name in _PROXY_VARS)




class _Decision:
    """Automatic routing, run once on first use (thread-safe): a command that never asks where a
    channel goes (a fetch of a local URL, a verify) never probes."""

    def __init__(self, decide: Callable[[], tuple[dict, dict]], overrides: list[tuple[str, Mirror]]) -> None:
        self._decide = decide
        self._overrides = overrides
        self._result: tuple[dict, dict] | None = None
        self._lock = threading.Lock()

    def get(self) -> tuple[dict, dict]:
        with self._lock:
            if self._result is None:
                channels, routes = self._decide()
                channels, routes = dict(channels), dict(routes)
                for channel, mirror in self._overrides:
                    channels[channel] = (mirror,)
                    routes[channel] = Route(channel, "override", f"--mirror {channel}=URL (or SDSETUP_MIRROR_{channel.upper()})")
                self._result = (channels, routes)
            return self._result


class _Deferred(Mapping):
    """One half (0: channels, 1: routes) of a _Decision, as the mapping MirrorPlan expects."""

    def __init__(self, decision: _Decision, part: int) -> None:
        self._decision = decision
        self._part = part

    def __getitem__(self, key: str):
        return self._decision.get()[self._part][key]

    def __iter__(self):
        return iter(self._decision.get()[self._part])

    def __len__(self) -> int:
        return len(self._decision.get()[self._part])


def _forced_routes(channels: Mapping[str, tuple[Mirror, ...]], why: str) -> dict[str, Route]:
    return {ch: Route(ch, channels[ch][0].name, why) for ch in CHANNELS}


def select_mirrors(
    settings: Settings,
    session: "requests.Session | None" = None,
    *,
    env: Mapping[str, str] | None = None,
    catalog: Catalog | None = None,
    probe: ProbeFn | None = None,
    proxy_check: Callable[[str], Any] | None = None,
) -> MirrorPlan:
    """Resolve the profile and overrides into a MirrorPlan.

    No `--mirror` (nor SDSETUP_MIRROR, nor the config's `mirror`) means `auto`: each channel is routed by
    a real measurement (see `autoroute.route_auto`); `probe` is injected (default: `autoroute.measurer`, through
    `session` and the settings' proxy). A profile name, a base URL or CHANNEL=URL overrides force the choice."""
    import os

    env = os.environ if env is None else env
    catalog = catalog or load_catalog(settings)
    name = settings.mirror or "auto"
    env_proxy = not settings.proxy and env_has_proxy(env)
    notes: list[str] = []
    overridden = {channel for channel, _ in settings.mirror_overrides}
    if looks_like_url(name):
        plan = MirrorPlan.single_base(name, proxy=settings.proxy, env_proxy=env_proxy, rewrites=catalog.rewrites)
        channels = dict(plan.channels)
        name = plan.profile
        routes = _forced_routes(channels, "one base URL for every channel (--mirror URL / --mirror-url / --offline)")
    elif name == "auto" and overridden != set(CHANNELS):
        from sdsetup.net import autoroute

        inputs = autoroute.inputs_from(settings, env)
        if probe is None:
            def new_session():
                if session is not None:
                    return session
                from sdsetup.net.session import build_session

                return build_session(settings, pool_size=48)

            probe = autoroute.measurer(inputs, new_session)
        if proxy_check is None:
            from sdsetup.net.measure import check_proxy as proxy_check
        decided = _Decision(lambda: autoroute.route_auto(catalog, inputs, probe, proxy_check=proxy_check)[:2],
                            [(ch, override_mirror(ch, url, catalog)) for ch, url in settings.mirror_overrides])
        notes += [f"{channel}: overridden to {redact_url(url)}" for channel, url in settings.mirror_overrides]
        return MirrorPlan(profile=name, channels=_Deferred(decided, 0), proxy=settings.proxy, rewrites=catalog.rewrites,
                          notes=tuple(notes), env_proxy=env_proxy, routes=_Deferred(decided, 1), ca_bundle=trust_store(settings))
    else:
        channels = dict(catalog.profile("official" if name == "auto" else name).channels)
        routes = _forced_routes(channels, f"--mirror {name} (mirror profile chosen, not probed)")
    for channel, url in settings.mirror_overrides:
        channels[channel] = (override_mirror(channel, url, catalog),)
        routes[channel] = Route(channel, "override", f"--mirror {channel}=URL (or SDSETUP_MIRROR_{channel.upper()})")
        notes.append(f"{channel}: overridden to {redact_url(url)}")
    return MirrorPlan(
        profile=name,
        channels=channels,
        proxy=settings.proxy,
        rewrites=catalog.rewrites,
        notes=tuple(notes),
        env_proxy=env_proxy,
        base_url=name if looks_like_url(settings.mirror) else None,
        routes=routes,
        ca_bundle=trust_store(settings),
    )
