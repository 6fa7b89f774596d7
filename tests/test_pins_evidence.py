"""Every pin in the built-in manifests names where it was read and when (issue 20): a commit, revision,
sha256, size or URL without an `evidence` note fails here. Every checkpoint has second sources."""

from __future__ import annotations

import pytest

from sdsetup.manifest import builtin_names, load_manifest, pins_without_evidence, resolve_manifest_path
from sdsetup.tomlcompat import loads_toml


def _raw(name: str) -> str:
    return resolve_manifest_path(name).read_text("utf-8")


@pytest.mark.parametrize("name", ["a1111", "a1111-dev", "forge", "comfyui"])
def test_every_pin_of_every_builtin_manifest_carries_its_evidence(name):
    assert name in builtin_names()
    assert pins_without_evidence(loads_toml(_raw(name), "manifest")) == []


def test_the_loader_keeps_the_evidence_beside_each_pin():
    m = load_manifest("a1111")
    assert "issues/17204" in m.webui.evidence and "2026-" in m.webui.evidence
    assert all(r.evidence for r in m.repositories) and all(s.evidence for s in m.pip if s.archives)
    assert m.models[0].evidence and m.torch["cuda"].evidence and m.hub[0].evidence
    assert {name for name, _ in m.hub[0].file_evidence} == set(m.hub[0].files)
    assert "BLAKE3" in dict(m.hub[0].file_evidence)["vocab.json"]


def _drop_line(text: str, containing: str) -> str:
    lines = text.split("\n")
    index = next(i for i, line in enumerate(lines) if line.startswith("evidence") and containing in line)
    return "\n".join(lines[:index] + lines[index + 1:])


@pytest.mark.parametrize("containing, where", [
    ("82a973c0", "webui"),                       # a commit
    ("ASSETS_COMMIT_HASH", "repositories[0]"),    # a launch-time repository's commit
    ("CLIP_PACKAGE", "pip[1]"),                   # an archive URL
    ("TORCH_INDEX_URL", "torch.cuda"),            # an index URL
    ("6ce0161689", "models[0]"),                  # a sha256, size and URLs
    ("32bd6428", "hub[0]"),                       # a Hub revision
])
def test_a_planted_pin_without_evidence_is_caught(containing, where):
    problems = pins_without_evidence(loads_toml(_drop_line(_raw("a1111"), containing), "manifest"))
    assert len(problems) == 1 and problems[0].startswith(f"{where}: pins ") and "without evidence" in problems[0]


def test_a_hub_file_pin_without_evidence_and_undated_evidence_are_caught():
    text = _raw("a1111")
    start = text.index('{ name = "merges.txt"')
    line_end = text.index("\n", start)
    line = text[start:line_end]
    no_note = line[:line.index(", evidence =")] + " },"
    problems = pins_without_evidence(loads_toml(text[:start] + no_note + text[line_end:], "manifest"))
    assert problems == ["hub[0].files[1]: pins sha256, size without evidence"]
    undated = text.replace("read 2026-12-07\"", "read recently\"", 1)
    assert any("names no date" in p for p in pins_without_evidence(loads_toml(undated, "manifest")))


def test_a_table_without_pins_needs_no_evidence():
    assert pins_without_evidence({"launch": {"args": ["--x"]}, "python": {"supported": ["3.10"]}}) == []


SECOND_SOURCES = ("https://modelscope.cn/", "https://huggingface.co/Comfy-Org/stable-diffusion-v1-5-archive/")


@pytest.mark.parametrize("name", ["a1111", "a1111-dev", "forge", "comfyui"])
def test_every_checkpoint_has_a_modelscope_and_a_hub_archive_source(name):
    for model in load_manifest(name).models:
        for prefix in SECOND_SOURCES:
            assert any(url.startswith(prefix) and url.endswith(model.path.rsplit("/", 1)[-1]) for url in model.alternates), (name, prefix)
