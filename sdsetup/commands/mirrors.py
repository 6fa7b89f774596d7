"""`sdsetup mirrors list` and `sdsetup mirrors probe`."""

from __future__ import annotations

from typing import Any

from sdsetup.errors import ExitCode
from sdsetup.output import Outcome
from sdsetup.settings import CHANNELS, Settings
from sdsetup.i18n import N_, t

NO_ANSWER_HINT = N_("`sdsetup check --network` tells whether the proxy or the hosts fail; try another --mirror "
                     "(or --proxy URL), or add a reachable mirror to a profile in your config file")
# The built-in profiles' descriptions (manifests/mirrors.toml), translated where they are shown; a user's own
# profile is shown as its owner wrote it.
BUILTIN_DESCRIPTIONS = {
    N_("the upstream hosts: pypi.org, download.pytorch.org, github.com, huggingface.co"),
    N_("mainland China mirrors as of 2026-12 (cloud vendors first, universities last; community GitHub proxies)"),
}
PROBE_BUDGET = 8.0  # `mirrors probe` is asked for: it may wait longer than an install's routing does


def list_profiles(settings: Settings) -> Outcome:
    """Every profile (built-in and the user's), and what the current selection resolves to."""
    from sdsetup.net.mirrors import load_catalog, select_mirrors

    catalog = load_catalog(settings)
    data: dict[str, Any] = {
        "profiles": {name: profile.to_json() for name, profile in catalog.profiles.items()},
        "rewrite": [rule.to_json() for rule in catalog.rewrites],
        "probe_urls": dict(catalog.probe_urls),
    }
    warnings: list[str] = []
    if (settings.mirror or "auto") == "auto" and not settings.mirror_overrides:
        # `list` never probes: it shows the routing a recent run cached, else says how it will be decided.
        try:
            data["selected"] = select_mirrors(settings, catalog=catalog, probe=_not_cached).to_json()
        except _NotCached:
            data["selected"] = {"profile": "auto", "notes": [t("auto (the default): each channel is decided by probing when a command "
                                                               "needs the network (`sdsetup mirrors probe` shows what it would find)")]}
    else:
        plan = select_mirrors(settings, catalog=catalog)
        data["selected"] = plan.to_json()
        warnings = plan.warnings
    return Outcome("mirrors list", data, human=_render_list, warnings=warnings)


class _NotCached(Exception):
    pass


def _not_cached(targets: Any) -> Any:
    raise _NotCached


def _candidate_line(candidate: dict[str, Any]) -> str:
    extra = [candidate[k] for k in ("layout", "style") if k in candidate]
    if "serves" in candidate:
        extra.append(t("serves {what}", what="+".join(candidate["serves"])))
    suffix = f"  ({', '.join(extra)})" if extra else ""
    return f"{candidate['name']:<16} {candidate['url']}{suffix}"


def _render_list(data: dict[str, Any]) -> str:
    lines = []
    for name, profile in data["profiles"].items():
        if profile["description"]:
            description = profile["description"]
            if profile["source"] == "built-in" and description in BUILTIN_DESCRIPTIONS:
                description = t(description)
            lines.append(t("profile {name} [{source}]: {description}", name=name, source=profile["source"], description=description))
        else:
            lines.append(t("profile {name} [{source}]", name=name, source=profile["source"]))
        for channel in CHANNELS:
            for i, candidate in enumerate(profile["channels"][channel]):
                label = channel if i == 0 else ""
                lines.append(f"  {label:<12} {_candidate_line(candidate)}")
        lines.append("")
    for rule in data["rewrite"]:
        lines.append(f"rewrite {rule['prefix']} -> {rule['replace']}")
    selected = data["selected"]
    lines.append(t("selected: {profile}", profile=selected["profile"]))
    if "channels" in selected:
        for channel in CHANNELS:
            lines.append(f"  {channel:<12} {_candidate_line(selected['channels'][channel]['selected'])}")
            if selected["channels"][channel].get("reason"):
                from sdsetup.route_reasons import route_reason

                lines.append(f"  {'':<12} {route_reason(selected['channels'][channel]['reason'])}")
        if selected.get("proxy"):
            lines.append(f"  {'proxy':<12} {selected['proxy']}")
    for note in selected.get("notes", []):
        lines.append("  " + t("note: {note}", note=note))
    return "\n".join(lines)


def probe(settings: Settings, channels: list[str] | None = None) -> Outcome:
    """Probe every candidate (of the chosen profile, or of all profiles) concurrently and rank them."""
    from sdsetup.errors import usage_error
    from sdsetup.logs import get_logger, start_run_log
    from sdsetup.net import decide, measure
    from sdsetup.net.mirrors import MirrorPlan, load_catalog, looks_like_url, override_mirror, probe_targets
    from sdsetup.net.session import build_session, trust_store

    for channel in channels or ():
        if channel not in CHANNELS:
            raise usage_error(t("--channel {channel}: unknown channel", channel=channel),
                              t("channels are {channels}", channels=", ".join(CHANNELS)))
    wanted = list(channels or CHANNELS)
    catalog = load_catalog(settings)
    name = settings.mirror
    if looks_like_url(name):
        pool = dict(MirrorPlan.single_base(str(name)).channels)
    elif name and name != "auto":
        pool = dict(catalog.profile(name).channels)
    else:  # every known candidate, each once
        pool = {ch: tuple(dict.fromkeys(m for p in catalog.profiles.values() for m in p.channels[ch])) for ch in CHANNELS}
    for channel, url in settings.mirror_overrides:
        pool[channel] = (override_mirror(channel, url, catalog),)
    pool = {ch: pool[ch] for ch in wanted}
    log_path = start_run_log(settings, "mirrors-probe")
    log = get_logger("mirrors")
    log.info("probing %s through %s", name or "all profiles", _redacted(settings.proxy) or "no explicit proxy")
    checks = measure.probe_all(build_session(settings, pool_size=48), probe_targets(catalog, pool),
                                    budget=PROBE_BUDGET, proxy=settings.proxy, ca_bundle=trust_store(settings))
    ranked = decide.ranked_by_channel(checks)
    for results in ranked.values():
        for result in results:
            log.info("probe %s", result.to_json())  # URLs and errors are already redacted
    data = {
        "profile": name or "all",
        "proxy": _redacted(settings.proxy),
        "channels": {ch: [r.to_json() for r in results] for ch, results in ranked.items()},
        "best": {ch: (results[0].name if results and results[0].ok else None) for ch, results in ranked.items()},
        "log": str(log_path) if log_path else None,
    }
    unreachable = [ch for ch, best in data["best"].items() if best is None]
    warnings = [t("{channel}: no candidate answered", channel=ch) for ch in unreachable]
    if unreachable:
        data["hint"] = t(NO_ANSWER_HINT)
        warnings.append(f"hint: {data['hint']}")  # i18n: keep (the prefix; the text is translated)
    exit_code = ExitCode.NETWORK if unreachable else ExitCode.OK
    return Outcome("mirrors probe", data, exit_code=exit_code, human=_render_probe, warnings=warnings)


def _redacted(url: str | None) -> str | None:
    from sdsetup.redact import redact_url

    return redact_url(url) if url else None


def _render_probe(data: dict[str, Any]) -> str:
    lines = [t("probed: {profile} through proxy {proxy}", profile=data["profile"], proxy=data["proxy"]) if data["proxy"]
             else t("probed: {profile}", profile=data["profile"])]
    for channel, results in data["channels"].items():
        lines.append(f"{channel}:")
        for i, result in enumerate(results, 1):
            if result["ok"]:
                speed = result["throughput_bps"]
                speed_text = f"{speed / 1024:.0f} KiB/s" if speed else "-"
                verdict = f"ok   {(result['latency_s'] or 0) * 1000:6.0f} ms  {result['seconds']:5.2f} s  {speed_text}"
            else:
                verdict = f"FAIL {result['error']}"
            lines.append(f"  {i:>2}. {result['name']:<16} {verdict}")
            lines.append(f"      {result['url']}")
    if data.get("hint"):
        lines.append(f"hint: {data['hint']}")
    return "\n".join(lines)
