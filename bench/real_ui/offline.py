"""Run a web UI with no network: inside `unshare -n` (a new network namespace with only its own loopback).
Standard library only; started by bench/real_ui/run.py.

    unshare -n python3 offline.py launch --cwd DIR --log FILE --timeout S -- CMD...
    unshare -n python3 offline.py txt2img --cwd DIR --log FILE --timeout S --kind a1111|comfyui --port P \
        --image OUT.png [--workflow FILE] -- CMD...

`launch` runs CMD to its end (a first launch with --exit / --quick-test-for-ci). `txt2img` starts CMD (the
server), waits for its port, asks for one 64x64, 2-step image through the UI's own API, saves it and stops
the server. Prints one JSON line: ok, seconds, error (the first error line), image.
"""

import argparse
import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request


def lo_up() -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=False)


def first_error(log_path: str) -> str:
    try:
        lines = open(log_path, encoding="utf-8", errors="replace").read().splitlines()
    except OSError:
        return ""
    keys = ("Traceback", "Error", "error:", "ERROR", "Exception", "FAILED", "RuntimeError", "fatal:")
    for i, line in enumerate(lines):
        if line.startswith("Traceback"):
            # the exception line that ends the traceback says more than its first line
            for later in lines[i + 1:]:
                if later and not later.startswith((" ", "\t", "Traceback", "During handling", "The above")):
                    return later.strip()[:300]
        if any(k in line for k in keys):
            return line.strip()[:300]
    return (lines[-1].strip() if lines else "")[:300]


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


def post(url: str, payload: dict, timeout: float) -> dict:
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read().decode())


def get(url: str, timeout: float = 10) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read()


def wait_port(url: str, proc: subprocess.Popen, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            get(url, timeout=5)
            return True
        except Exception:
            time.sleep(2)
    return False


def wait_log(path: str, text: str, proc: subprocess.Popen, deadline: float) -> bool:
    """A1111/Forge answer on their API routes before startup ends (a txt2img then fails with "'Api' object
    has no attribute 'default_script_arg_txt2img'"): wait for the line they print when it has ended."""
    while time.monotonic() < deadline and proc.poll() is None:
        with open(path, encoding="utf-8", errors="replace") as f:
            if text in f.read():
                return True
        time.sleep(2)
    return False


def a1111_txt2img(port: int, image: str, deadline: float) -> None:
    payload = {"prompt": "a lighthouse on a cliff", "negative_prompt": "", "steps": 2, "width": 64, "height": 64,
               "sampler_name": "Euler", "cfg_scale": 7, "seed": 1, "batch_size": 1, "n_iter": 1}
    answer = post(f"http://127.0.0.1:{port}/sdapi/v1/txt2img", payload, max(30, deadline - time.monotonic()))
    with open(image, "wb") as f:
        f.write(base64.b64decode(answer["images"][0].split(",", 1)[-1]))


def comfyui_txt2img(port: int, image: str, workflow_path: str, deadline: float) -> None:
    workflow = json.load(open(workflow_path))
    answer = post(f"http://127.0.0.1:{port}/prompt", {"prompt": workflow, "client_id": "sdsetup-bench"}, 60)
    prompt_id = answer["prompt_id"]
    while time.monotonic() < deadline:
        history = json.loads(get(f"http://127.0.0.1:{port}/history/{prompt_id}"))
        entry = history.get(prompt_id)
        if entry:
            status = entry.get("status") or {}
            if status.get("status_str") == "error":
                raise RuntimeError("ComfyUI: " + json.dumps(status.get("messages"))[:300])
            for out in (entry.get("outputs") or {}).values():
                for img in out.get("images", []):
                    q = urllib.parse.urlencode({"filename": img["filename"], "subfolder": img.get("subfolder", ""), "type": img.get("type", "output")})
                    with open(image, "wb") as f:
                        f.write(get(f"http://127.0.0.1:{port}/view?{q}"))
                    return
        time.sleep(2)
    raise TimeoutError("ComfyUI: no image before the deadline")


def main() -> int:
    import urllib.parse  # noqa: F401  (comfyui_txt2img)

    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["launch", "txt2img"])
    ap.add_argument("--cwd", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--kind", default="a1111")
    ap.add_argument("--port", type=int, default=7860)
    ap.add_argument("--image")
    ap.add_argument("--workflow")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args, cmd = ap.parse_args(argv[:split]), argv[split + 1:]
    lo_up()
    started = time.monotonic()
    deadline = started + args.timeout
    result = {"ok": False, "error": "", "image": None}
    with open(args.log, "ab") as log:
        proc = subprocess.Popen(cmd, cwd=args.cwd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            if args.mode == "launch":
                try:
                    rc = proc.wait(args.timeout)
                except subprocess.TimeoutExpired:
                    rc = None
                    result["error"] = f"still running after {args.timeout:.0f} s"
                result["ok"] = rc == 0
                if rc not in (0, None):
                    result["error"] = f"exit code {rc}: " + first_error(args.log)
            else:
                probe = f"http://127.0.0.1:{args.port}/" + ("sdapi/v1/sd-models" if args.kind == "a1111" else "system_stats")
                ready = wait_port(probe, proc, deadline) and (args.kind != "a1111" or wait_log(args.log, "Startup time:", proc, deadline))
                if not ready:
                    rc = proc.poll()
                    result["error"] = (f"the server exited ({rc}) before answering: " if rc is not None else "no answer on the port: ") + first_error(args.log)
                else:
                    try:
                        if args.kind == "a1111":
                            a1111_txt2img(args.port, args.image, deadline)
                        else:
                            comfyui_txt2img(args.port, args.image, args.workflow, deadline)
                        result["ok"] = os.path.getsize(args.image) > 0
                        result["image"] = args.image
                    except Exception as exc:  # the answer is the measurement
                        body = ""
                        if hasattr(exc, "read"):
                            try:
                                body = exc.read().decode("utf-8", "replace")[:300]
                            except Exception:
                                pass
                        result["error"] = f"{type(exc).__name__}: {exc} {body}".strip()[:400] or first_error(args.log)
        finally:
            stop(proc)
    result["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
