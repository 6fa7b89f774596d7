"""Why a channel goes where it goes (a route's reason), in this run's language.

sdsetup/net words a route's reason in English (routing.py, mirrors.py) and keeps it so in the route cache
and the JSON documents; the places that show it to people (`mirrors list`, install's source lines) pass
it through `route_reason`, which matches it against these templates like i18n.from_english does for
Typer's messages. A reason that matches none is shown as it is.
"""

from __future__ import annotations

from sdsetup.i18n import N_, Msg, from_english, t

ROUTE_CACHED = N_("{reason} (probed {minutes} min ago)")
ROUTE_REASONS = (
    N_("{upstream} did not answer ({why}); {best} answered fastest of {count} mirror(s)"),
    N_("{upstream} did not answer ({why}) and no mirror answered either; trying {again} anyway"),
    N_("{upstream} answered ({method})"),
    N_("--mirror {name} (mirror profile chosen, not probed)"),
    N_("one base URL for every channel (--mirror URL / --mirror-url / --offline)"),
    N_("--mirror {channel}=URL (or SDSETUP_MIRROR_{variable})"),
    N_("mirror profile {profile}"),
)


def route_reason(reason: str) -> str:
    """`reason` in this run's language (the cached form wraps another reason)."""
    cached = from_english(reason, (ROUTE_CACHED,))
    if isinstance(cached, Msg):
        return t(ROUTE_CACHED, reason=route_reason(cached.args["reason"]), minutes=cached.args["minutes"])
    return from_english(reason, ROUTE_REASONS)
