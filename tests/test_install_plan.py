"""The install plan (pure): torch build, flags and steps for recorded machines; the --dry-run document."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sdsetup import cli
from sdsetup.detect.machine import MachineFacts
from sdsetup.errors import ExitCode, SdsetupError
from sdsetup.install.plan import InstallOptions, build_plan, decide, failover_order
from sdsetup.manifest import load_manifest
from sdsetup.net.mirrors import select_mirrors
from sdsetup.settings import load_settings

GIB = 1024**3


def machine(system="Linux", gpus=()):
    return MachineFacts.from_json({
        "os": {"system": system, "release": "x", "version": "x", "machine": "arm64" if system == "Darwin" else "x86_64", "bits": 64, "wsl": False},
        "gpus": list(gpus), "ram_total_bytes": 32 * GIB, "ram_available_bytes": 24 * GIB,
    })


def nvidia(name="NVIDIA GeForce RTX 3060", vram=12, cuda="12.4", cc="8.6"):
    return {"vendor": "nvidia", "name": name, "vram_total_bytes": vram * GIB, "vram_free_bytes": None,
            "driver_version": "550.54", "cuda_driver_version": cuda, "compute_capability": cc, "source": "nvml"}


@pytest.mark.parametrize(
    "manifest, facts, backend, tag, flags_in, flags_out",
    [
        # A 12 GB Ampere card on a CUDA 12.4 driver: the manifest's best build it can run.
        ("a1111", machine(gpus=[nvidia()]), "cuda", "cu121", ["--xformers", "--medvram-sdxl", "--no-download-sd-model"], ["--lowvram"]),
        # An old driver (CUDA 11.8 only): the cu118 build.
        ("a1111", machine(gpus=[nvidia(cuda="11.8")]), "cuda", "cu118", ["--opt-sdp-attention"], ["--xformers"]),
        # 4 GB Pascal: --medvram and upcast sampling.
        ("a1111", machine(gpus=[nvidia("NVIDIA GeForce GTX 1050 Ti", 4, "12.2", "6.1")]), "cuda", "cu121", ["--medvram", "--upcast-sampling"], []),
        # RTX 5090 with the dev manifest: cu128.
        ("a1111-dev", machine(gpus=[nvidia("NVIDIA GeForce RTX 5090", 32, "12.8", "12.0")]), "cuda", "cu128", [], ["--medvram"]),
        # No GPU: the CPU build and the CPU flags.
        ("a1111", machine(), "cpu", "cpu", ["--use-cpu", "all", "--no-half", "--skip-torch-cuda-test"], ["--xformers"]),
        # Apple silicon: torch from PyPI (no torch index), the web UI's macOS defaults.
        ("a1111", machine("Darwin", [{"vendor": "apple", "name": "Apple M2"}]), "mps", None, ["--skip-torch-cuda-test", "--upcast-sampling"], []),
        # AMD on Linux: ROCm build, AMD flags.
        ("a1111", machine(gpus=[{"vendor": "amd", "name": "AMD Radeon RX 6800", "vram_total_bytes": 16 * GIB}]), "rocm", "rocm5.6", ["--opt-sub-quad-attention"], []),
    ],
)
def test_decisions_for_recorded_machines(manifest, facts, backend, tag, flags_in, flags_out):
    decisions = decide(load_manifest(manifest), facts)
    assert decisions.backend == backend and decisions.torch_tag == tag
    for flag in flags_in:
        assert flag in decisions.launch_args
    for flag in flags_out:
        assert flag not in decisions.launch_args
    assert decisions.launch_args[0] == "--no-download-sd-model"  # the manifest's own flags first


def test_xformers_is_installed_with_torch_only_when_the_flags_use_it():
    with_x = decide(load_manifest("a1111"), machine(gpus=[nvidia()]))
    without = decide(load_manifest("a1111"), machine(gpus=[nvidia(cuda="11.8")]))
    assert with_x.xformers == "xformers==0.0.23.post1" and without.xformers is None


def test_blackwell_with_the_master_manifest_is_refused_with_the_way_out():
    with pytest.raises(SdsetupError) as info:
        decide(load_manifest("a1111"), machine(gpus=[nvidia("NVIDIA GeForce RTX 5080", 16, "12.8", "12.0")]))
    assert info.value.exit_code == ExitCode.USAGE and "--manifest a1111-dev" in info.value.hint


def test_a_backend_the_manifest_lacks_is_a_usage_error(tmp_path):
    text = Path(load_manifest("a1111").source).read_text("utf-8")
    start, end = text.index("[torch.rocm]"), text.index("[torch.mps]")
    own = tmp_path / "no-rocm.toml"
    own.write_text(text[:start] + text[end:], "utf-8")
    with pytest.raises(SdsetupError, match="no torch build for the rocm backend"):
        decide(load_manifest(str(own)), machine(), "rocm")


@pytest.mark.parametrize(
    "lists, expected",
    [
        ([("m1/a", "m2/a", "A")], ("m1/a", "m2/a", "A")),
        # The mirrors of the fork come before the canonical host of the first source.
        ([("m/deleted", "DELETED"), ("m/fork", "FORK")], ("m/deleted", "m/fork", "DELETED", "FORK")),
        ([("A",), ("B",)], ("A", "B")),
        ([("m/a", "A"), ("m/a", "A")], ("m/a", "A")),
    ],
)
def test_failover_order(lists, expected):
    assert failover_order(lists) == expected


def _plan(manifest="a1111", mirror=None, facts=None, **options):
    settings = load_settings({"mirror": [mirror] if mirror else None}, env={})
    return build_plan(load_manifest(manifest), facts or machine(gpus=[nvidia()]), select_mirrors(settings, env={}),
                      InstallOptions(**options), Path("/x/webui"))


def test_steps_follow_the_web_uis_own_order():
    ids = [step.id for step in _plan().steps]
    assert ids == ["preflight", "webui", "venv", "torch", "pip:build-tools", "pip:clip", "pip:open_clip", "pip:requirements",
                   "repo:stable-diffusion-webui-assets", "repo:stable-diffusion-stability-ai", "repo:generative-models",
                   "repo:k-diffusion", "repo:BLIP", "models", "hub", "webui-user", "record", "smoke"]
    ids = [step.id for step in _plan(skip_models=True, skip_smoke=True).steps]
    assert "models" not in ids and "smoke" not in ids


def test_disk_budget_counts_only_pending_steps():
    plan = _plan()
    everything = plan.disk_needs()
    assert everything["install_dir"] > 4265146304 + 2_600_000_000  # the model and the cu121 torch wheel at least
    only_models = plan.disk_needs({"models"})
    assert only_models["install_dir"] == 4265146304 + plan.manifest.disk.slack_bytes
    assert plan.disk_needs(set()) == {"install_dir": 0, "temp": 0}


def _urls(doc) -> list[str]:
    found = []

    def walk(value):
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str) and value.startswith(("http://", "https://")):
            found.append(value)

    walk(doc)
    return found


def _recorded_machine_env(tmp_path, gpus=()) -> dict:
    """Replay a recorded machine (SDSETUP_MACHINE_FACTS), so the plan does not depend on this one's GPU."""
    import os

    facts = tmp_path / "machine.json"
    facts.write_text(json.dumps(machine(gpus=gpus).to_json()), "utf-8")
    return {**os.environ, "SDSETUP_MACHINE_FACTS": str(facts)}


def test_dry_run_with_the_cn_mirrors_shows_every_pin_and_writes_nothing(tmp_path):
    """The acceptance check of issue 5, through the CLI (on a recorded machine with an RTX 3060)."""
    target = tmp_path / "webui"
    result = subprocess.run([sys.executable, "-m", "sdsetup", "install", str(target), "--dry-run", "--json", "--mirror", "cn"],
                            capture_output=True, text=True, timeout=120, env=_recorded_machine_env(tmp_path, [nvidia()]))
    assert result.returncode == 0, result.stderr
    assert not target.exists()
    doc = json.loads(result.stdout)
    data = doc["data"]
    text = result.stdout
    m = load_manifest("a1111")
    for commit in [m.webui.commit, *(r.commit for r in m.repositories)]:
        assert commit in text
    assert "https://github.com/w-e-w/stablediffusion.git" in text
    assert m.models[0].sha256 in text and str(m.models[0].size) in text
    hub = next(step for step in data["steps"] if step["id"] == "hub")
    assert [f["filename"] for f in hub["repos"][0]["files"]] == list(m.hub[0].files)
    # Every URL list puts a cn mirror first; the canonical host is only the last resort.
    for step in data["steps"]:
        lists = [step.get("urls")] + [f.get("urls") for f in step.get("files", []) if isinstance(f, dict)]
        lists += [a["urls"] for a in step.get("archives", [])]
        lists += [f["urls"] for repo in step.get("repos", []) for f in repo["files"]]
        for urls in filter(None, lists):
            assert not urls[0].startswith(("https://github.com/", "https://huggingface.co/")), (step["id"], urls)
            assert urls[-1].startswith(("https://github.com/", "https://huggingface.co/")), (step["id"], urls)
    firsts = [u for u in _urls(data["steps"]) if "hf-mirror.com" in u]
    assert len(firsts) >= 6  # the checkpoint and five tokenizer files
    assert any(u.startswith("https://ghfast.top/https://github.com/") for u in _urls(data["steps"]))
    for step in data["steps"]:
        for arg in step.get("index_args", []):
            assert "pypi.org" not in arg and "download.pytorch.org" not in arg
    torch = next(step for step in data["steps"] if step["id"] == "torch")
    assert torch["tag"] == "cu121" and "https://mirror.nju.edu.cn/pytorch/whl/cu121/" in torch["index_args"]


def test_dry_run_for_people_lists_the_plan(tmp_path):
    result = subprocess.run([sys.executable, "-m", "sdsetup", "install", str(tmp_path / "w"), "--dry-run", "--backend", "cpu"],
                            capture_output=True, text=True, timeout=120, env=_recorded_machine_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "dry run: nothing is written" in result.stdout and "v1-5-pruned-emaonly.safetensors" in result.stdout
    assert not (tmp_path / "w").exists()


def test_an_install_dir_inside_a_file_is_a_usage_error(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = CliRunner().invoke(cli.app, ["install", str(tmp_path / "notes.txt" / "webui"), "--mirror", "http://127.0.0.1:1/", "--json"])
    assert result.exit_code == 2, result.output
    error = json.loads(result.stdout)["error"]
    assert error["kind"] == "usage" and f"{tmp_path / 'notes.txt'} is a file" in error["message"]
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "real"])
@pytest.mark.parametrize("case", ["dir-is-a-file", "dir-inside-a-file", "no-such-python"])
def test_dry_run_refuses_the_inputs_a_real_install_refuses(tmp_path, case, dry_run):
    """--dry-run makes the real run's input checks: same usage error, same message, and it writes nothing."""
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    target, extra, named = {
        "dir-is-a-file": (notes, [], str(notes)),
        "dir-inside-a-file": (notes / "webui", [], str(notes)),
        "no-such-python": (tmp_path / "webui", ["--python", str(tmp_path / "nonexistent")], str(tmp_path / "nonexistent")),
    }[case]
    env = _recorded_machine_env(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    args = ["install", str(target), "--json", "--mirror", "http://127.0.0.1:1/", *extra, *(["--dry-run"] if dry_run else [])]
    result = CliRunner().invoke(cli.app, args, env=env)
    assert result.exit_code == 2, result.output
    error = json.loads(result.stdout)["error"]
    assert error["kind"] == "usage" and named in error["message"] and error["hint"]
    assert notes.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize(
    "lists, alternates, expected",
    [
        # Berlin: the official host answered (no mirror in front of it): it first, ModelScope after.
        ([("HF",)], ("MS",), ("HF", "MS")),
        # Shanghai: routed to a mirror, so the official host is the last resort, after the alternates.
        ([("hf-mirror", "HF")], ("MS",), ("hf-mirror", "MS", "HF")),
        ([("hf-mirror", "HF")], (), ("hf-mirror", "HF")),
        ([("hf-mirror", "HF")], ("MS", "hf-mirror"), ("hf-mirror", "MS", "HF")),
    ],
)
def test_model_sources_put_alternates_before_a_routed_around_official_host(lists, alternates, expected):
    from sdsetup.install.failover import model_sources

    assert model_sources(lists, alternates) == expected


def test_a_real_runs_outcome_says_which_source_served_each_channel():
    """Not only --dry-run: the finished install names each channel's source and why (people and --json)."""
    from sdsetup.commands.install import render_outcome
    from sdsetup.install.executor import sources_json
    from sdsetup.net.mirrors import select_mirrors
    from sdsetup.settings import load_settings

    mirrors = select_mirrors(load_settings({"mirror": ["cn"]}, {}), env={})
    sources = sources_json(mirrors)
    assert set(sources["channels"]) == {"pypi", "torch", "github", "huggingface"}
    assert set(sources["channels"]["pypi"]) >= {"source", "reason", "probe_ms", "cached"}
    data = {"steps": [], "install_dir": "/x", "manifest": "a1111", "mirror": sources}
    text = render_outcome(data)
    pypi = sources["channels"]["pypi"]
    assert f"pypi: {pypi['source']}" in text and pypi["reason"] in text
