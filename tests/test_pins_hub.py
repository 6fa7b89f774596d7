"""The Hub files every manifest pins are the Hub's real bytes: rebuilt from stored public copies
(tests/fixtures/hub/clip_l14.py), they reproduce a public BLAKE3 record, and the manifests pin exactly them."""

from __future__ import annotations

import hashlib
import json

import pytest

from sdsetup.manifest import builtin_names, load_manifest
from tests.fixtures.hub import clip_l14

blake3 = pytest.importorskip("blake3")  # the `test` extra installs it
needs_snapshot = pytest.mark.skipif(not clip_l14.available(), reason="no stored snapshot of Forge on this machine "
                                    "(search tool: fetch github:lllyasviel/stable-diffusion-webui-forge)")
FROM_SNAPSHOT = {"vocab.json", "merges.txt"}


@needs_snapshot
@pytest.mark.parametrize("name", sorted(clip_l14.STORED_BLOBS))
def test_the_stored_copies_are_forges_files_byte_for_byte(name):
    """What the builder reads is the blob git names in Forge's tree at dfdcbab (git ls-tree)."""
    assert clip_l14.git_blob_id(clip_l14.stored(name)) == clip_l14.STORED_BLOBS[name]


@needs_snapshot
def test_the_token_settings_used_are_forges_stored_values():
    forge = json.loads(clip_l14.stored("tokenizer_config.json"))
    assert {key: forge[key] for key in clip_l14.TOKENIZER_SETTINGS} == clip_l14.TOKENIZER_SETTINGS
    special = json.loads(clip_l14.stored("special_tokens_map.json"))
    assert (special["bos_token"]["content"], special["eos_token"]["content"]) == (clip_l14.BOS, clip_l14.EOS)
    assert special["unk_token"]["content"] == special["pad_token"] == clip_l14.EOS


@pytest.mark.parametrize("name", sorted(clip_l14.RECORDED_BLAKE3))
def test_each_rebuilt_file_reproduces_the_public_blake3_record(name):
    if name in FROM_SNAPSHOT and not clip_l14.available():
        pytest.skip("needs the stored Forge snapshot")
    assert blake3.blake3(clip_l14.hub_bytes(name)).hexdigest() == clip_l14.RECORDED_BLAKE3[name]


def test_a_changed_byte_fails_the_record():
    """The check can fail: one byte more in the rebuilt config is another BLAKE3."""
    assert blake3.blake3(clip_l14.hub_bytes("config.json") + b" ").hexdigest() != clip_l14.RECORDED_BLAKE3["config.json"]


def _clip_specs():
    specs = [(name, spec) for name in builtin_names() for spec in load_manifest(name).hub if spec.repo_id == clip_l14.REPO_ID]
    assert {name for name, _ in specs} >= {"a1111", "a1111-dev"}  # forge and comfyui ship these files in their repositories
    return specs


def test_every_manifest_pins_the_commit_and_every_file():
    for manifest, spec in _clip_specs():
        assert spec.revision == clip_l14.REVISION and spec.pinned, manifest
        assert set(spec.files) == set(clip_l14.RECORDED_BLAKE3), manifest  # all five pinned, none left to a mirror
        assert {name for name, _ in spec.hashes} == set(spec.files) == {name for name, _ in spec.sizes}, manifest


@pytest.mark.parametrize("name", sorted(clip_l14.RECORDED_BLAKE3))
def test_every_manifest_pins_the_proven_bytes(name):
    if name in FROM_SNAPSHOT and not clip_l14.available():
        pytest.skip("needs the stored Forge snapshot")
    data = clip_l14.hub_bytes(name)
    for manifest, spec in _clip_specs():
        assert spec.sha256_of(name) == hashlib.sha256(data).hexdigest(), (manifest, name)
        assert spec.size_of(name) == len(data), (manifest, name)


@needs_snapshot
def test_forges_vocabulary_copy_is_not_the_hubs_file():
    """The pin this replaces (1,059,962 B, e089ad92…) was Forge's sorted, indented copy: a real Hub download
    would have failed its check. Same vocabulary, other bytes."""
    forge = clip_l14.stored("vocab.json")
    assert hashlib.sha256(forge).hexdigest().startswith("e089ad92") and len(forge) == 1059962
    assert blake3.blake3(forge).hexdigest() != clip_l14.RECORDED_BLAKE3["vocab.json"]
    assert json.loads(forge) == json.loads(clip_l14.hub_bytes("vocab.json"))
