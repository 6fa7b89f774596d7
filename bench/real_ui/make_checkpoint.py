"""A full-size Stable Diffusion 1.5 checkpoint with random weights, built from the web UI's own model
config and code: run with the installed web UI's venv Python, in the web UI folder.

    venv/bin/python make_checkpoint.py --config configs/v1-inference.yaml \
        --ldm repositories/stable-diffusion-stability-ai --hub HF_HOME_DIR --out model.safetensors

UNet and VAE are the config's own classes (ldm), initialised as the classes do; the text encoder is
transformers' CLIPTextModel from the seeded Hub config.json; the noise schedule buffers come from ldm's
DDPM.register_schedule. Floating tensors are stored as fp16 under the real key names (model.diffusion_model.,
first_stage_model., cond_stage_model.transformer.), as in v1-5-pruned-emaonly.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--ldm", required=True, help="the folder holding the ldm package")
    ap.add_argument("--hub", required=True, help="a folder under which the seeded openai/clip-vit-large-patch14 lies")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    sys.path.insert(0, os.path.abspath(args.ldm))
    import torch
    from omegaconf import OmegaConf
    from safetensors.torch import save_file
    from ldm.util import instantiate_from_config
    from ldm.models.diffusion.ddpm import DDPM
    from transformers import CLIPTextConfig, CLIPTextModel

    started = time.monotonic()
    torch.manual_seed(args.seed)
    params = OmegaConf.load(args.config).model.params
    state = {}

    unet = instantiate_from_config(params.unet_config)
    state.update({f"model.diffusion_model.{k}": v for k, v in unet.state_dict().items()})
    del unet
    vae = instantiate_from_config(params.first_stage_config)
    state.update({f"first_stage_model.{k}": v for k, v in vae.state_dict().items()})
    del vae

    # rglob, not glob: HF_HOME is usually a hidden folder (.cache/huggingface), which glob's ** skips
    configs = sorted(str(p) for p in Path(args.hub).rglob("models--openai--clip-vit-large-patch14/snapshots/*/config.json"))
    if not configs:
        print(f"no seeded openai/clip-vit-large-patch14 config.json under {args.hub}", file=sys.stderr)
        return 1
    text = CLIPTextModel(CLIPTextConfig.from_pretrained(os.path.dirname(configs[0])))
    state.update({f"cond_stage_model.transformer.{k}": v for k, v in text.state_dict().items()})
    del text

    schedule = torch.nn.Module()
    schedule.v_posterior = 0.0
    schedule.parameterization = "eps"
    DDPM.register_schedule(schedule, timesteps=int(params.timesteps), linear_start=float(params.linear_start),
                           linear_end=float(params.linear_end))
    state.update(schedule.state_dict())

    out = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state.items()}
    tmp = args.out + ".part"
    save_file(out, tmp, metadata={"format": "pt", "sdsetup_bench": "random weights, not a trained model"})
    os.replace(tmp, args.out)
    print(json.dumps({"tensors": len(out), "parameters": sum(v.numel() for v in out.values()),
                      "bytes": os.path.getsize(args.out), "seconds": round(time.monotonic() - started, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
