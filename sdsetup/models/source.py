"""What `models add SOURCE` names, decided from the text alone (pure; table-tested).

Accepted (see docs/models.md):
  hf:OWNER/REPO/PATH[@REV]                         a Hugging Face Hub file (REV defaults to main)
  https://huggingface.co/OWNER/REPO/resolve|blob/REV/PATH   (hf-mirror.com URLs are read the same way)
  civitai:VERSION_ID                               a Civitai model version
  https://civitai.com/models/ID[/slug][?modelVersionId=V], …/api/download/models/V, …/api/v1/model-versions/V
  https://modelscope.cn/models/OWNER/REPO/resolve|file/view/REV/PATH
  any other http(s):// URL                         only with --sha256 (nothing else vouches for its bytes)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, unquote, urlsplit

from sdsetup.errors import usage_error
from sdsetup.i18n import t

HF_BASE = "https://huggingface.co/"
HF_HOSTS = ("huggingface.co", "www.huggingface.co", "hf-mirror.com", "hf.co")
CIVITAI_BASE = "https://civitai.com/"
CIVITAI_HOSTS = ("civitai.com", "www.civitai.com")
MODELSCOPE_BASE = "https://modelscope.cn/"
MODELSCOPE_HOSTS = ("modelscope.cn", "www.modelscope.cn")

_REPO_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_REV = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")


@dataclass(frozen=True)
class ModelSource:
    """kind: hf | civitai | modelscope | url. For hf/modelscope: repo, revision, path; civitai: the version
    id (or the model id when only that was given); url: the URL itself."""

    kind: str
    text: str  # as given (for messages)
    repo: str | None = None
    revision: str | None = None
    path: str | None = None
    version_id: int | None = None
    model_id: int | None = None
    url: str | None = None

    @property
    def canonical_url(self) -> str | None:
        """The file's URL on its home host (the mirror layer rewrites it); None for Civitai (the API says)."""
        if self.kind == "hf":
            return f"{HF_BASE}{self.repo}/resolve/{quote(self.revision or 'main', safe='')}/{quote(self.path or '', safe='/')}"
        if self.kind == "modelscope":
            return f"{MODELSCOPE_BASE}models/{self.repo}/resolve/{quote(self.revision or 'master', safe='')}/{quote(self.path or '', safe='/')}"
        return self.url

    @property
    def file_name(self) -> str | None:
        if self.path:
            return self.path.rsplit("/", 1)[-1]
        if self.url:
            name = unquote(urlsplit(self.url).path.rstrip("/").rsplit("/", 1)[-1])
            return name or None
        return None


def _bad(text: str, why: str):
    return usage_error(t("'{text}' is not a model source sdsetup understands ({why})", text=text, why=why),
                       t("give hf:OWNER/REPO/PATH[@REV], civitai:VERSION_ID, a Hugging Face, Civitai or ModelScope URL, "
                         "or any https:// URL with --sha256"))


def _check_path(text: str, path: str) -> str:
    parts = path.split("/")
    if not path or any(p in ("", ".", "..") for p in parts) or "\\" in path or "\0" in path:
        raise _bad(text, t("the file path inside the repository is missing or not plain"))
    return path


def _check_repo(text: str, owner: str, name: str) -> str:
    if not (_REPO_PART.match(owner) and _REPO_PART.match(name)):
        raise _bad(text, t("the repository must be OWNER/NAME"))
    return f"{owner}/{name}"


def _check_rev(text: str, rev: str) -> str:
    if not _REV.match(rev) or ".." in rev:
        raise _bad(text, t("the revision '{rev}' is not a branch, tag or commit", rev=rev))
    return rev


def _hub_path(text: str, segments: list[str], default_rev: str, kinds: tuple[str, ...]) -> tuple[str, str, str]:
    """OWNER/REPO/(resolve|blob|…)/REV/PATH… → (repo, rev, path)."""
    if len(segments) < 5 or segments[2] not in kinds:
        raise _bad(text, t("a file URL has OWNER/REPO/resolve/REVISION/PATH"))
    repo = _check_repo(text, segments[0], segments[1])
    return repo, _check_rev(text, segments[3] or default_rev), _check_path(text, "/".join(segments[4:]))


def _int(text: str, value: str | None) -> int:
    if not value or not value.isdigit() or int(value) <= 0:
        raise _bad(text, t("a Civitai id is a positive number"))
    return int(value)


def parse_source(text: str) -> ModelSource:
    """SOURCE → ModelSource, or a usage error that names it."""
    raw = (text or "").strip()
    if not raw:
        raise _bad(text, t("it is empty"))
    lowered = raw.lower()
    if lowered.startswith("hf:"):
        body = raw[3:].lstrip("/")
        rev = "main"
        if "@" in body:
            body, rev = body.rsplit("@", 1)
        segments = body.split("/")
        if len(segments) < 3:
            raise _bad(raw, t("hf: takes OWNER/REPO/PATH"))
        repo = _check_repo(raw, segments[0], segments[1])
        return ModelSource("hf", raw, repo=repo, revision=_check_rev(raw, rev), path=_check_path(raw, "/".join(segments[2:])))
    if lowered.startswith("civitai:"):
        return ModelSource("civitai", raw, version_id=_int(raw, raw[len("civitai:"):].strip()))
    try:
        parts = urlsplit(raw)
    except ValueError:
        raise _bad(raw, t("not a URL")) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise _bad(raw, t("not an http(s):// URL"))
    host = parts.hostname.lower()
    segments = [unquote(s) for s in parts.path.strip("/").split("/")]
    if host in HF_HOSTS:
        repo, rev, path = _hub_path(raw, segments, "main", ("resolve", "blob", "raw"))
        return ModelSource("hf", raw, repo=repo, revision=rev, path=path)
    if host in MODELSCOPE_HOSTS:
        if segments[:1] == ["models"]:
            segments = segments[1:]
        if len(segments) >= 6 and segments[2:4] == ["file", "view"]:  # …/file/view/REV/PATH (the web page of a file)
            segments = segments[:2] + ["resolve"] + segments[4:]
        repo, rev, path = _hub_path(raw, segments, "master", ("resolve",))
        return ModelSource("modelscope", raw, repo=repo, revision=rev, path=path)
    if host in CIVITAI_HOSTS or host.endswith(".civitai.com"):
        query = parse_qs(parts.query)
        if segments[:3] == ["api", "download", "models"] and len(segments) >= 4:
            return ModelSource("civitai", raw, version_id=_int(raw, segments[3]))
        if segments[:3] == ["api", "v1", "model-versions"] and len(segments) >= 4:
            return ModelSource("civitai", raw, version_id=_int(raw, segments[3]))
        if segments[:1] == ["models"] and len(segments) >= 2:
            version = (query.get("modelVersionId") or [None])[0]
            if version is not None:
                return ModelSource("civitai", raw, version_id=_int(raw, version), model_id=_int(raw, segments[1]))
            return ModelSource("civitai", raw, model_id=_int(raw, segments[1]))
        raise _bad(raw, t("a Civitai URL names a model or a model version"))
    return ModelSource("url", raw, url=raw)
