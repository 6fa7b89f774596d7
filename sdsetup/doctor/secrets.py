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


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+@[^\s\"'<>]*")

# The web UI's own login flags; the value follows a space, an "=", or (sysinfo's JSON list) '", "'.
_LOGIN_FLAG = re.compile(r"""(?<![\w-])(--(?:gradio-auth|api-auth|ngrok(?:-auth)?))(\s*=\s*|\s+|",\s*")("[^"]*"|'[^']*'|[^\s"',\]]+)""")
# A variable whose name says it holds a secret: a whole _-separated word KEY, TOKEN, SECRET, PASSWORD,
# AUTH… (CIVITAI_KEY, HF_TOKEN, MY_SERVICE_AUTH; not KEYBOARD or AUTHOR).
_SECRET_WORD = r"(?:API_?KEY|KEY|TOKEN|SECRET|PASSWORD|PASSWD|PWD|AUTH|CREDENTIALS?)"
SECRET_NAME = re.compile(rf"(?i)^(?:[A-Z0-9]+_)*{_SECRET_WORD}(?:_[A-Z0-9]+)*$")
_SECRET_ASSIGN = re.compile(rf"""(?i)(?<![\w.-])((?:[A-Z0-9]+_)*{_SECRET_WORD}(?:_[A-Z0-9]+)*)(\s*=\s*)("[^"]*"|'[^']*'|[^\s"'&,;]+)""")
# the same as a JSON member, for upper-case (environment) names only: sdsetup's own keys are lower-case
_SECRET_MEMBER = re.compile(rf"""(?<![\w.-])((?:[A-Z0-9]+_)*{_SECRET_WORD}(?:_[A-Z0-9]+)*)("\s*:\s*)("[^"]*")""")
_HINT = re.compile(r"(?i)-auth|ngrok|key|token|secret|passw|pwd|auth|credential")


def _unquote(value: str) -> str:
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'" else value


def assignment_secrets(text: str) -> list[str]:
    """Values of login flags and of secret-named variables in a text (a log line, a webui-user file)."""
    if not _HINT.search(text):
        return []
    found = [_unquote(m[3]) for m in _LOGIN_FLAG.finditer(text)]
    found += [_unquote(m[3]) for m in _SECRET_ASSIGN.finditer(text)]
    found += [_unquote(m[3]) for m in _SECRET_MEMBER.finditer(text)]
    return [v for v in found if len(v) >= 3 and v != MASK]


def url_secrets(text: str) -> list[str]:
    """Passwords of the URLs in a text (cheap to call on every log line: most have no '://')."""
    if "://" not in text or "@" not in text:
        return []
    found: list[str] = []
    for url in _URL.findall(text):
        found += secrets_in_url(url)
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
        if value and (name in _TOKEN_VARS or (SECRET_NAME.match(name) and len(value) >= 6)):
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


class Redactor:
    """Callable text -> redacted text, counting replacements per kind."""

    def __init__(self, secrets: Iterable[str] = (), home: str | None = None) -> None:
        self.secrets = [s for s in secrets if s and len(s) >= 3]
        self.home = home if home is not None else os.path.expanduser("~")
        self.counts: Counter = Counter()

    def __call__(self, text: str) -> str:
        if not text:
            return text
        out, n = redact._USERINFO.subn(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
        self.counts["url_password"] += n
        for pattern in redact._TOKENS:
            out, n = pattern.subn(MASK, out)
            self.counts["token"] += n
        out, n = redact._AUTH_HEADER.subn(lambda m: f"{m[1]}{m[2]}{MASK}", out)
        self.counts["auth_header"] += n
        if _HINT.search(out):  # masked in place; learning them for elsewhere is the reader's job (learn)
            out, n = _LOGIN_FLAG.subn(lambda m: f"{m[1]}{m[2]}{MASK}", out)
            self.counts["web_ui_login"] += n
            out, n = _SECRET_ASSIGN.subn(lambda m: f"{m[1]}{m[2]}{MASK}" if m[3] != MASK else m[0], out)
            self.counts["secret_env"] += n
            out, n = _SECRET_MEMBER.subn(lambda m: f'{m[1]}{m[2]}"{MASK}"' if m[3] != f'"{MASK}"' else m[0], out)  # stays JSON
            self.counts["secret_env"] += n
        out, n = redact._KEY_VALUE.subn(redact.mask_key_value, out)
        self.counts["secret_value"] += n
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
        # The foundation's own pass last: anything it knows that the steps above missed.
        return redact.redact_text(out, self.secrets, self.home)

    def learn(self, secrets: Iterable[str]) -> None:
        """More secrets found later (in the logs being read): masked from now on."""
        for secret in secrets:
            if secret and len(secret) >= 3 and secret not in self.secrets:
                self.secrets.append(secret)
                self.secrets.sort(key=len, reverse=True)

    def summary(self) -> dict[str, int]:
        return {kind: self.counts[kind] for kind in KIND_LABELS if self.counts[kind]}

    def describe(self) -> str:
        parts = [f"{count} {KIND_LABELS[kind]}" for kind, count in self.summary().items()]
        return "removed: " + "; ".join(parts) if parts else "nothing needed removing"
