"""A git remote's login without putting it on a command line (every local user can read argv).

git passes the URL it fetches to git-remote-http on its command line, so a URL with `user:pass@` is
split: the bare URL goes on argv, and a credential helper that reads the login from this process's
environment answers git's `get` (git runs `!…` helpers with its shell; the values never appear on a
command line). Shared by the measure step (`git ls-remote`, the shallow rate fetch) and the plan's
git_env (clones, fetches).
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit

# {n}: which login.
HELPER = ("!f() { test \"$1\" = get || exit 0; printf 'username=%s\\npassword=%s\\n' "
          "\"$SDSETUP_GIT_USERNAME_{n}\" \"$SDSETUP_GIT_PASSWORD_{n}\"; }; f")


def split_login(url: str) -> tuple[str, str, str]:
    """(the URL without its login, user name, password) — percent-decoded, as git's helper must answer."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, "", ""
    host = parts.netloc.rpartition("@")[2]
    bare = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return bare, unquote(parts.username or ""), unquote(parts.password or "")


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def helper_pairs(bare_url: str, n: int) -> list[tuple[str, str]]:
    """git config pairs (for GIT_CONFIG_*) that make login `n` answer for `bare_url`'s host."""
    return [(f"credential.{origin(bare_url)}.helper", HELPER.replace("{n}", str(n)))]


def login_env(url: str, n: int = 0) -> tuple[str, dict[str, str], list[tuple[str, str]]]:
    """(bare URL for argv, environment variables, git config pairs) for one URL that may carry a login."""
    bare, user, password = split_login(url)
    if bare == url:
        return url, {}, []
    return bare, {f"SDSETUP_GIT_USERNAME_{n}": user, f"SDSETUP_GIT_PASSWORD_{n}": password}, helper_pairs(bare, n)


def config_env(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """GIT_CONFIG_COUNT/KEY_n/VALUE_n for `pairs` (git >= 2.31): configuration that stays off argv."""
    env = {"GIT_CONFIG_COUNT": str(len(pairs))}
    for i, (key, value) in enumerate(pairs):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    return env
