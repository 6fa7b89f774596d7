"""What the source says about the file: its name, size, sha256 and where to fetch it (network edge).

- Hugging Face: a HEAD of the resolve URL without following the redirect; the Hub answers with
  `X-Linked-Etag` (the LFS file's sha256), `X-Linked-Size` and `X-Repo-Commit` (huggingface_hub reads
  the same headers: `file_download.py`, `get_hf_file_metadata`), and hf-mirror.com passes them on.
- Civitai: `GET /api/v1/model-versions/ID` (or `/api/v1/models/ID` for its newest version): the file's
  `name`, `sizeKB`, `hashes.SHA256`, `downloadUrl`, and the model's `type`.
- ModelScope: `GET /api/v1/models/OWNER/REPO/repo/files?Revision=REV&Recursive=true`: each file's `Path`,
  `Size`, `Sha256` (modelscope/modelscope `modelscope/hub/api.py`, `get_model_files`).
Every request goes through the mirror plan's `file_urls` (mirrors and the user's rewrite rules first)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import quote

from sdsetup.errors import ExitCode, SdsetupError, usage_error
from sdsetup.i18n import t
from sdsetup.models.folders import type_from_civitai
from sdsetup.models.source import CIVITAI_BASE, MODELSCOPE_BASE, ModelSource
from sdsetup.redact import redact_url

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX40 = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class ModelFile:
    """One file to add: canonical URL (for the record), name, sha256, exact size when the source gives one."""

    source: ModelSource
    url: str
    file_name: str
    sha256: str | None
    size: int | None = None
    approx_size: int | None = None  # Civitai gives KB with decimals: shown, never enforced
    model_type: str | None = None  # from the source (Civitai), else None
    revision: str | None = None  # the commit the Hub resolved REV to
    notes: tuple[str, ...] = field(default=())


def _etag_sha(value: str | None) -> str | None:
    if not value:
        return None
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"').lower()
    return text if _HEX64.match(text) else None


def _get_json(session, urls: tuple[str, ...], timeout, what: str) -> Any:
    """The first source that answers 200 with JSON; 404 is the user's mistake; 401/403 asks for a token."""
    last = None
    for url in urls:
        try:
            response = session.get(url, timeout=timeout)
        except Exception as exc:  # requests' errors: the next source
            last = f"{redact_url(url)}: {type(exc).__name__}"
            continue
        with response:
            if response.status_code == 200:
                try:
                    return response.json()
                except ValueError:
                    last = f"{redact_url(url)}: not JSON"
                    continue
            if response.status_code == 404:
                raise usage_error(t("{what} was not found ({url} answered 404)", what=what, url=redact_url(url)),
                                  t("check the id or URL"))
            if response.status_code in (401, 403):
                raise SdsetupError(t("{what} needs a login ({url} answered {status})", what=what, url=redact_url(url),
                                     status=response.status_code),
                                   t("create an API key on civitai.com (Account settings) and set CIVITAI_API_TOKEN to it"),
                                   ExitCode.NETWORK)
            last = f"{redact_url(url)}: HTTP {response.status_code}"
    raise SdsetupError(t("could not read {what} from any source ({last})", what=what, last=last or "-"),
                       t("check the network or the mirror (`sdsetup check --network`), then run again"), ExitCode.NETWORK)


def hub_file(source: ModelSource, session, file_urls: Callable[[str], tuple[str, ...]], timeout) -> ModelFile:
    canonical = source.canonical_url or ""
    last = None
    for url in file_urls(canonical):
        try:
            response = session.head(url, allow_redirects=False, timeout=timeout)
        except Exception as exc:
            last = f"{redact_url(url)}: {type(exc).__name__}"
            continue
        if response.status_code == 404:
            raise usage_error(t("{repo} has no file {path} at {rev} ({url} answered 404)", repo=source.repo, path=source.path,
                                rev=source.revision, url=redact_url(url)), t("check the repository, path and revision"))
        if response.status_code in (401, 403):
            raise SdsetupError(t("{repo} needs a login on the Hub ({status})", repo=source.repo, status=response.status_code),
                               t("accept the model's terms on its Hub page, or download it yourself and give its URL with --sha256"),
                               ExitCode.NETWORK)
        if response.status_code >= 400:
            last = f"{redact_url(url)}: HTTP {response.status_code}"
            continue
        sha = _etag_sha(response.headers.get("X-Linked-Etag")) or _etag_sha(response.headers.get("ETag"))
        size_text = response.headers.get("X-Linked-Size") or (response.headers.get("Content-Length") if response.status_code == 200 else None)
        commit = (response.headers.get("X-Repo-Commit") or "").strip().lower()
        revision = commit if _HEX40.match(commit) else source.revision
        pinned = source if revision == source.revision else ModelSource("hf", source.text, repo=source.repo, revision=revision, path=source.path)
        return ModelFile(source, pinned.canonical_url or canonical, source.file_name or "", sha,
                         int(size_text) if size_text and size_text.isdigit() else None, revision=revision)
    raise SdsetupError(t("could not reach the Hub for {repo} ({last})", repo=source.repo, last=last or "-"),
                       t("check the network or the huggingface mirror (`sdsetup check --network`), then run again"), ExitCode.NETWORK)


def civitai_file(source: ModelSource, session, file_urls: Callable[[str], tuple[str, ...]], timeout) -> ModelFile:
    version_id = source.version_id
    if version_id is None:
        model = _get_json(session, file_urls(f"{CIVITAI_BASE}api/v1/models/{source.model_id}"), timeout,
                          t("Civitai model {id}", id=source.model_id))
        versions = model.get("modelVersions") if isinstance(model, dict) else None
        if not versions or not isinstance(versions[0], dict) or not str(versions[0].get("id", "")).isdigit():
            raise usage_error(t("Civitai model {id} has no version to download", id=source.model_id), t("check the model page"))
        version_id = int(versions[0]["id"])
    version = _get_json(session, file_urls(f"{CIVITAI_BASE}api/v1/model-versions/{version_id}"), timeout,
                        t("Civitai model version {id}", id=version_id))
    files = [f for f in (version.get("files") or []) if isinstance(f, dict)] if isinstance(version, dict) else []
    chosen = next((f for f in files if f.get("primary")), None) or next((f for f in files if f.get("type") == "Model"), None) \
        or (files[0] if files else None)
    if chosen is None:
        raise usage_error(t("Civitai model version {id} lists no file", id=version_id), t("check the model page"))
    name = str(chosen.get("name") or "")
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise SdsetupError(t("Civitai gave an unusable file name '{name}'", name=name), t("give one with --name FILE"), ExitCode.FAILED)
    sha = str((chosen.get("hashes") or {}).get("SHA256") or "").lower() or None
    kb = chosen.get("sizeKB")
    download = str(chosen.get("downloadUrl") or f"{CIVITAI_BASE}api/download/models/{version_id}")
    model_type = type_from_civitai(((version.get("model") or {}).get("type")))
    pinned = ModelSource("civitai", source.text, version_id=version_id, model_id=version.get("modelId") or source.model_id)
    return ModelFile(pinned, download, name, sha if sha and _HEX64.match(sha) else None,
                     approx_size=int(float(kb) * 1024) if isinstance(kb, (int, float)) else None, model_type=model_type)


def modelscope_file(source: ModelSource, session, file_urls: Callable[[str], tuple[str, ...]], timeout) -> ModelFile:
    api = f"{MODELSCOPE_BASE}api/v1/models/{source.repo}/repo/files?Revision={quote(source.revision or 'master', safe='')}&Recursive=true"
    listing = _get_json(session, file_urls(api), timeout, t("ModelScope repository {repo}", repo=source.repo))
    files = ((listing.get("Data") or {}).get("Files") or []) if isinstance(listing, dict) else []
    entry = next((f for f in files if isinstance(f, dict) and f.get("Path") == source.path), None)
    if entry is None:
        raise usage_error(t("{repo} has no file {path} at {rev}", repo=source.repo, path=source.path, rev=source.revision),
                          t("check the repository, path and revision"))
    sha = str(entry.get("Sha256") or "").lower() or None
    size = entry.get("Size")
    return ModelFile(source, source.canonical_url or "", source.file_name or "", sha if sha and _HEX64.match(sha) else None,
                     size if isinstance(size, int) and size >= 0 else None, revision=source.revision)


def describe_file(source: ModelSource, session, file_urls: Callable[[str], tuple[str, ...]], timeout) -> ModelFile:
    if source.kind == "hf":
        return hub_file(source, session, file_urls, timeout)
    if source.kind == "civitai":
        return civitai_file(source, session, file_urls, timeout)
    if source.kind == "modelscope":
        return modelscope_file(source, session, file_urls, timeout)
    return ModelFile(source, source.url or "", source.file_name or "", None)
