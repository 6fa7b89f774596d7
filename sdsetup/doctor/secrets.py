"""What must not leave the machine, and a redactor that counts what it removed (never the values).

The patterns are sdsetup.redact's (one definition of a secret); this adds the secrets only this
machine knows (proxy passwords from settings, the environment and git config, a saved Hugging Face
token) and a count per kind, so the bundle can say "removed 2 proxy passwords, 14 home paths".
"""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Iterable

from sdsetup import redact
from sdsetup.redact import MASK, secrets_in_url

_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy", "PIP_PROXY",
               "SDSETUP_PROXY", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "HF_ENDPOINT")
_TOKEN_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_TOKEN", "GH_TOKEN", "GITHUB_TOKEN", "CIVITAI_API_KEY")

KIND_LABELS = {
    "url_password": "password(s) in URLs (proxy or index credentials)",
    "token": "token(s) (Hugging Face, GitHub, API keys)",
    "auth_header": "authorization header value(s)",
    "secret_value": "NAME=secret value(s) (…TOKEN, …PASSWORD, …SECRET, …API_KEY)",
    "web_ui_login": "web UI login(s) (--gradio-auth, --api-auth, --ngrok values)",
    "secret_env": "value(s) of variables named …KEY, …TOKEN, …SECRET, …PASSWORD, …AUTH",
    "known_secret": "known secret(s) of this machine (proxy passwords, saved tokens)",
    "home_path": "home directory path(s)",
}


# A URL with userinfo, found at "://" (linear: see sdsetup/redact.py); the userinfo runs to the last "@"
# before the path, so a password holding "@" is learned whole.
_URL = re.compile(r"""(?<=[A-Za-z0-9+.-])://[^\s"'<>/]+@[^\s"'<>]*""")

_LOGIN_FLAG = redact._LOGIN_FLAG
# A variable whose name says it holds a secret: a whole _-separated word KEY, TOKEN, SECRET, PASSWORD,
# AUTH… (CIVITAI_KEY, HF_TOKEN, MY_SERVICE_AUTH; not KEYBOARD or AUTHOR). Judged by is_secret_name on
# the whole word: a pattern of words around a secret word re-read the name once per underscore.
_SECRET_WORDS = frozenset({"APIKEY", "KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "PWD", "AUTH", "CREDENTIAL", "CREDENTIALS"})
_ASSIGN_NAME = re.compile(r"(?<![\w.-])([A-Za-z0-9_]+)(\s*=\s*)")
_ASSIGN_VALUE = re.compile(r"""("[^"\n]*"|'[^'\n]*'|[^\s"'&,;]+)""")
# the same as a JSON member, for upper-case (environment) names only: sdsetup's own keys are lower-case
_MEMBER_NAME = re.compile(r"""(?<![\w.-])([A-Z0-9_]+)("\s*:\s*)""")
_MEMBER_VALUE = re.compile(r'"[^"\n]*"')
_HINT = re.compile(r"(?i)-auth|ngrok|key|token|secret|passw|pwd|auth|credential")


def is_secret_name(name: str) -> bool:
    """NAME is made of _-separated ASCII words and one of them is KEY, TOKEN, SECRET, PASSWORD, AUTH…"""
    words = name.upper().split("_")
    return all(word.isascii() and word.isalnum() for word in words) and any(word in _SECRET_WORDS for word in words)


def _is_member_name(name: str) -> bool:
    return name == name.upper() and is_secret_name(name)


def _unquote(value: str) -> str:
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'" else value


def _logins(value: str) -> list[str]:
    """A login flag's value and its parts: A1111 takes user1:pass1,user2:pass2 (each pair and password)."""
    found = [value]
    for pair in value.split(","):
        pair = pair.strip()
        found += [pair, pair.partition(":")[2]] if ":" in pair else [pair]
    return found


def _named_values(text: str, finder: re.Pattern, is_secret, value: re.Pattern) -> list[str]:
    found = []
    last = 0
    for match in finder.finditer(text):
        if match.start() >= last and is_secret(match[1]):  # a name inside a value already taken is part of it
            hit = value.match(text, match.end())
            if hit:
                found.append(_unquote(hit[0]))
                last = hit.end()
    return found


def assignment_secrets(text: str) -> list[str]:
    """Values of login flags and of secret-named variables in a text (a log line, a webui-user file)."""
    if not _HINT.search(text):
        return []
    found = [part for m in _LOGIN_FLAG.finditer(text) for part in _logins(_unquote(m[3]))]
    found += _named_values(text, _ASSIGN_NAME, is_secret_name, _ASSIGN_VALUE)
    found += _named_values(text, _MEMBER_NAME, _is_member_name, _MEMBER_VALUE)
    return [v for v in found if len(v) >= 3 and v != MASK]


def url_secrets(text: str) -> list[str]:
    """Passwords of the URLs in a text (cheap to call on every log line: most have no '://')."""
    if "://" not in text or "@" not in text:
        return []
    found: list[str] = []
    for url in _URL.findall(text):
        found += secrets_in_url("x" + url)  # any scheme: only the userinfo is read
    return found


def _git_global(key: str) -> str | None:
    git = shutil.which("git")
    if not git:
        return None
    from sdsetup.errors import SdsetupError
    from sdsetup.gitops import GitRunner

    try:
        result = GitRunner(git=git).run(["config", "--global", "--get-all", key], check=False, timeout=15)
    except (OSError, SdsetupError):
        return None
    return result.stdout.strip() or None


def machine_secrets(settings=None, install_dir: Path | None = None, env: dict | None = None,
                    extra_texts: Iterable[str] = ()) -> list[str]:
    """Secrets to mask wherever they appear, even outside a URL (a password echoed in a log)."""
    env = os.environ if env is None else env
    found: list[str] = []
    urls = [getattr(settings, "proxy", None)] + [env.get(name) for name in _PROXY_VARS]
    urls += [_git_global("http.proxy"), _git_global("https.proxy")]
    for url in urls:
        found += secrets_in_url(url)
    for name, value in env.items():
        # any variable named like a secret; short values (on/off, 1) would mask common words
        if value and (name in _TOKEN_VARS or (is_secret_name(name) and len(value) >= 6)):
            found.append(value)
    token_files = [Path(env.get("HF_HOME", "") or Path.home() / ".cache" / "huggingface") / "token"]
    if install_dir is not None:
        token_files.append(install_dir / ".cache" / "huggingface" / "token")
    for token_file in token_files:
        try:
            token = token_file.read_text("utf-8").strip()
        except OSError:
            continue
        if token:
            found.append(token)
    for text in extra_texts:  # e.g. webui-user files: proxies, logins and keys set there
        found += url_secrets(text)
        found += assignment_secrets(text)
    unique = []
    for secret in found:
        if secret and len(secret) >= 3 and secret not in unique:
            unique.append(secret)
    return sorted(unique, key=len, reverse=True)


def secrets_pattern(secrets: Iterable[str]) -> re.Pattern | None:
    """One regex for many literal secrets, shaped as their trie (shared prefixes once, chains as one
    literal): each text position costs the few characters that tell the secrets apart, not one compare
    per secret, so a log that teaches 20,000 secrets is still read in linear time. Longest match first."""
    trie: dict = {}
    for secret in secrets:
        node = trie
        for char in secret:
            node = node.setdefault(char, {})
        node[""] = True

    def render(node: dict) -> str:
        branches = []
        for char in sorted(key for key in node if key):
            child, literal = node[char], char
            while len(child) == 1 and "" not in child:  # a chain with no branch and no end: one literal
                ((char, child),) = child.items()
                literal += char
            branches.append(re.escape(literal) + render(child))
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    if not trie:
        return None
    try:
        return re.compile(render(trie))
    except (RecursionError, re.error, OverflowError):  # a pathological set: the caller replaces one by one
        return None


class Redactor:
    """Callable text -> redacted text, counting replacements per kind."""

    def __init__(self, secrets: Iterable[str] = (), home: str | None = None) -> None:
        self.secrets = sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True)
        self._known = set(self.secrets)
        self._pattern: re.Pattern | None = None
        self._unsorted = bool(self.secrets)  # the pattern is built when first needed, after the learning
        self.home = home if home is not None else os.path.expanduser("~")
        self.counts: Counter = Counter()

    def __call__(self, text: str) -> str:
        if not text:
            return text
        out, counts = redact.redact_patterns(text)
        self.counts.update(counts)
        if _HINT.search(out):  # masked in place; learning them for elsewhere is the reader's job (learn)
            out, n = redact._sub_named(out, _ASSIGN_NAME, is_secret_name, _ASSIGN_VALUE)
            self.counts["secret_env"] += n
            out, n = redact._sub_named(out, _MEMBER_NAME, _is_member_name, _MEMBER_VALUE)  # stays JSON
            self.counts["secret_env"] += n
        if self._unsorted:  # longest first, so a secret holding another is masked whole
            self.secrets.sort(key=len, reverse=True)
            self._pattern = secrets_pattern(self.secrets)
            self._unsorted = False
        if self._pattern is not None:
            out, n = self._pattern.subn(MASK, out)
            self.counts["known_secret"] += n
        else:
            for secret in self.secrets:
                n = out.count(secret)
                if n:
                    out = out.replace(secret, MASK)
                    self.counts["known_secret"] += n
        if self.home:
            before = out
            out = redact.redact_home(out, self.home)
            if out != before:
                self.counts["home_path"] += max(1, before.count(self.home) + before.count(self.home.replace("/", "\\")))
        return out

    def learn(self, secrets: Iterable[str]) -> None:
        """More secrets found later (in the logs being read): masked from now on."""
        for secret in secrets:
            if secret and len(secret) >= 3 and secret not in self._known:
                self._known.add(secret)
                self.secrets.append(secret)
                self._unsorted = True

    def summary(self) -> dict[str, int]:
        return {kind: self.counts[kind] for kind in KIND_LABELS if self.counts[kind]}

    def describe(self) -> str:
        parts = [f"{count} {KIND_LABELS[kind]}" for kind, count in self.summary().items()]
        return "removed: " + "; ".join(parts) if parts else "nothing needed removing"
