"""Never silent (issue 22 items 1-2): a log with a traceback, a pip/git/cmd.exe error or an OS error code
always gives a finding — the final exception, where it was raised, a next step for its class — marked
generic and ranked below every knowledge-base match; Windows codes and errno values come from a table
that also knows the Chinese (and other) wording Windows prints. The logs below are shaped like the
consoles of ComfyUI, A1111 and Forge (frames, prefixes and order as those programs print them)."""

from __future__ import annotations

import json
import re

import pytest

from sdsetup.doctor.generic import load_table
from sdsetup.doctor.kb import load_kb
from sdsetup.doctor.logread import read_text_lines
from sdsetup.doctor.match import rank, scan_lines

KB = load_kb()
TABLE = load_table()


def findings(text: str):
    found, _ = rank(KB, [scan_lines(KB, read_text_lines(text), "console.log")])
    return found


def ids(text: str) -> list[str]:
    return [r.entry.id for r in findings(text)]


COMFY_NODE_MISSING_MODULE = r"""
** ComfyUI startup time: 2025-03-01 10:00:00.000
** Python version: 3.12.8 (tags/v3.12.8:2dc476b, Dec  3 2024, 19:30:04) [MSC v.1942 64 bit (AMD64)]
** Python executable: D:\ComfyUI_windows_portable\python_embeded\python.exe
Total VRAM 12288 MB, total RAM 32560 MB
Traceback (most recent call last):
  File "D:\ComfyUI_windows_portable\ComfyUI\nodes.py", line 2141, in load_custom_node
    module_spec.loader.exec_module(module)
  File "<frozen importlib._bootstrap_external>", line 999, in exec_module
  File "D:\ComfyUI_windows_portable\ComfyUI\custom_nodes\comfyui-some-tagger\__init__.py", line 4, in <module>
    from .tagger import NODE_CLASS_MAPPINGS
  File "D:\ComfyUI_windows_portable\ComfyUI\custom_nodes\comfyui-some-tagger\tagger.py", line 9, in <module>
    import onnxruntime as ort
ModuleNotFoundError: No module named 'onnxruntime'

Cannot import D:\ComfyUI_windows_portable\ComfyUI\custom_nodes\comfyui-some-tagger module for custom nodes: No module named 'onnxruntime'

Import times for custom nodes:
   0.0 seconds: D:\ComfyUI_windows_portable\ComfyUI\custom_nodes\websocket_image_save.py
   0.1 seconds (IMPORT FAILED): D:\ComfyUI_windows_portable\ComfyUI\custom_nodes\comfyui-some-tagger

Starting server

To see the GUI go to: http://127.0.0.1:8188
"""


def test_a_missing_module_in_a_custom_node_names_the_node_and_its_requirements():
    found = findings(COMFY_NODE_MISSING_MODULE)
    assert [r.entry.id for r in found] == ["generic-missing-module"], "one finding: the import-list line adds nothing"
    entry = found[0].entry
    assert entry.generic and "onnxruntime" in entry.title and "comfyui-some-tagger" in entry.title
    assert any("custom_nodes/comfyui-some-tagger/requirements.txt" in step for step in entry.fix.steps)
    assert any("python_embeded" in step for step in entry.fix.steps), "the portable build's own Python"
    assert "ModuleNotFoundError: No module named 'onnxruntime'" in found[0].hit.evidence[0][1]
    zh = entry.text("zh-CN")
    assert "自定义节点 comfyui-some-tagger" in zh.title and "onnxruntime" in zh.title


A1111_EXTENSION_SKEW = """\
venv "C:\\sd\\venv\\Scripts\\Python.exe"
Python 3.10.11 (tags/v3.10.11:7d4cc5a, Apr  5 2023, 00:38:17) [MSC v.1929 64 bit (AMD64)]
Version: v1.10.1
Launching Web UI with arguments: --xformers
*** Error loading script: controlnet_helper.py
    Traceback (most recent call last):
      File "C:\\sd\\modules\\scripts.py", line 515, in load_scripts
        script_module = script_loading.load_module(scriptfile.path)
      File "C:\\sd\\extensions\\sd-webui-helper\\scripts\\controlnet_helper.py", line 7, in <module>
        from diffusers.models.attention_processor import AttnProcessor3
    ImportError: cannot import name 'AttnProcessor3' from 'diffusers.models.attention_processor' (C:\\sd\\venv\\lib\\site-packages\\diffusers\\models\\attention_processor.py)

---
Model loaded in 4.2s (load weights from disk: 0.6s, create model: 0.5s, apply weights to model: 2.8s).
Running on local URL:  http://127.0.0.1:7860
"""


def test_a_name_that_cannot_be_imported_names_the_extension_and_the_package():
    found = findings(A1111_EXTENSION_SKEW)
    assert [r.entry.id for r in found] == ["generic-cannot-import-name"]
    title = found[0].entry.title
    assert "AttnProcessor3" in title and "diffusers" in title and "extension sd-webui-helper" in title
    assert any("pip show diffusers" in step for step in found[0].entry.fix.steps)


@pytest.mark.parametrize("line, expected", [
    ("PermissionError: [WinError 5] 拒绝访问。: 'C:\\\\sd\\\\venv\\\\Lib\\\\site-packages\\\\cv2\\\\cv2.pyd'", "generic-os-access-denied"),
    ("OSError: [WinError 123] 文件名、目录名或卷标语法不正确。: 'C:\\sd\\C:'", "generic-os-bad-path-syntax"),
    ("OSError: [WinError 32] 另一个程序正在使用此文件，进程无法访问。: 'x.safetensors'", "generic-os-file-in-use"),
    ("OSError: [WinError 193] %1 不是有效的 Win32 应用程序。", "generic-os-not-win32-app"),
    ("OSError: [WinError 10048] 通常每个套接字地址(协议/网络地址/端口)只允许使用一次。", "generic-os-port-in-use"),
    ("ConnectionRefusedError: [WinError 10061] 由于目标计算机积极拒绝，无法连接。", "generic-os-connection-refused"),
    ("urllib.error.URLError: <urlopen error [WinError 10060] 由于连接方在一段时间后没有正确答复或连接的主机没有反应，连接尝试失败。>",
     "generic-os-connection-timeout"),
    ("OSError: [Errno 98] Address already in use", "generic-os-port-in-use"),
    ("FileNotFoundError: [WinError 206] 文件名或扩展名太长。", "generic-os-path-too-long"),
])
def test_windows_error_codes_and_errno_values_are_looked_up_in_the_table(line, expected):
    text = f"Traceback (most recent call last):\n  File \"C:\\sd\\modules\\x.py\", line 3, in f\n    g()\n{line}\n"
    found = findings(text)
    assert found and found[0].entry.id == expected, ids(text)
    entry = found[0].entry
    assert entry.generic and entry.fix.steps and entry.fix.steps_zh
    assert entry.text("zh-CN").title != entry.title, "the table's Chinese text is used under zh-CN"


@pytest.mark.parametrize("line, expected", [
    ("系统找不到指定的路径。", "generic-os-path-not-found"),
    ("拒绝访问。", "generic-os-access-denied"),
    ("Zugriff verweigert", "generic-os-access-denied"),
    ("此时不应有 \\Python310\\python.exe。", "generic-os-batch-unexpected"),
    ("\\Microsoft was unexpected at this time.", "generic-os-batch-unexpected"),
    ("exit code: 3221225477", "generic-os-native-crash"),
    ("Press any key... Process exited with code -1073741819", "generic-os-native-crash"),
    ("./webui.sh: line 304:  4242 Killed                  \"${python_cmd}\" -u \"${LAUNCH_SCRIPT}\" \"$@\"", "generic-os-killed-oom"),
])
def test_cmd_exe_messages_and_exit_codes_without_a_traceback_are_recognised(line, expected):
    assert ids(f"Launching Web UI with arguments:\n{line}\n")[:1] == [expected]


@pytest.mark.parametrize("line, command", [
    ("'python' 不是内部或外部命令，也不是可运行的程序", "python"),
    ("'conda' is not recognized as an internal or external command,", "conda"),
    ("\"pip\" wird nicht als interner oder externer Befehl, betriebsfähiges Programm oder Batch-Datei erkannt.", "pip"),
])
def test_a_command_cmd_exe_cannot_find_is_named(line, command):
    found = findings(line + "\n")
    assert found, line
    if found[0].entry.id == "generic-cmd-error":
        assert f"'{command}'" in found[0].entry.title


def test_pip_and_git_errors_become_findings_when_nothing_else_explains_them():
    pip = "Collecting insightface\n  Building wheel for insightface (pyproject.toml) ... error\n" \
          "  error: subprocess-exited-with-error\nERROR: Could not build wheels for insightface, which is required to install pyproject.toml-based projects\n"
    assert ids(pip)[:1] == ["generic-pip-error"]
    git = "Cloning into 'ComfyUI-Foo'...\nfatal: destination path 'ComfyUI-Foo' already exists and is not an empty directory.\n"
    found = findings(git)
    assert found and found[0].entry.generic, ids(git)


def test_a_knowledge_base_match_ranks_above_a_generic_finding_and_a_line_is_not_said_twice():
    warning = "You are running torch 1.13.1.\nThe program is tested to work with torch 2.1.2.\n"
    text = ("Python 3.12.1 (main)\nINCOMPATIBLE PYTHON VERSION\nThis program is tested with 3.10.6 Python, but you have 3.12.1.\n"
            + warning + "Traceback (most recent call last):\n  File \"/sd/modules/x.py\", line 1, in f\nValueError: bad value\n")
    found = findings(text)
    kinds = [r.entry.generic for r in found]
    assert kinds == sorted(kinds), "every knowledge-base finding comes before every generic one"
    assert True in kinds and False in kinds
    # an entry that names the error of the latest run leaves nothing for a generic finding to add
    oom = "Traceback (most recent call last):\n  File \"/sd/modules/x.py\", line 1, in f\n" \
          "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 4.00 GiB\n"
    assert ids(oom) == ["cuda-oom"]


def test_an_exception_in_the_web_ui_core_and_an_unclassified_one():
    text = "Traceback (most recent call last):\n  File \"/home/u/sd/modules/processing.py\", line 845, in process_images\n" \
           "    res = process_images_inner(p)\nValueError: too many values to unpack (expected 2)\n"
    found = findings(text)
    assert found[0].entry.id == "generic-exception"
    assert "web UI core" in found[0].entry.title and "too many values" in found[0].entry.title


def test_a_rich_traceback_with_box_edges_is_read():
    text = ("╭─────────────────── Traceback (most recent call last) ────────────────────╮\n"
            "│ /home/u/forge/extensions/sd-forge-foo/scripts/foo.py:12 in <module>       │\n"
            "│   11 import numpy                                                          │\n"
            "╰──────────────────────────────────────────────────────────────────────────╯\n"
            "AttributeError: module 'numpy' has no attribute 'float_'\n")
    found = findings(text)
    assert found[0].entry.id == "generic-module-attribute"
    assert "numpy" in found[0].entry.title and "sd-forge-foo" in found[0].entry.title


@pytest.mark.parametrize("text", [
    "Model loaded in 3.1s.\nRunning on local URL:  http://127.0.0.1:7860\nTo create a public link, set `share=True` in `launch()`.\n",
    "Import times for custom nodes:\n   0.0 seconds: /c/custom_nodes/websocket_image_save.py\n\nStarting server\n",
    "UserWarning: TypedStorage is deprecated. It will be removed in the future.\nFutureWarning: `resume_download` is deprecated\n",
])
def test_a_healthy_console_gives_no_generic_finding(text):
    assert ids(text) == []


def test_every_table_row_is_found_by_its_own_codes_and_words():
    for row in TABLE.os_errors:
        lines = [f"OSError: [WinError {c}] x" for c in row.winerror] + [f"OSError: [Errno {c}] x" for c in row.errno]
        lines += [f"exit code: {c}" for c in row.exit_codes]
        # each plain wording as Windows prints it (the few alternations are covered by the tests above)
        lines += [re.sub(r"\\(.)", r"\1", p.pattern).strip("^$") for p in row.texts
                  if not re.search(r"[|?]|\(\?", p.pattern)]
        assert lines, row.id
        for line in lines:  # the table's own lookup (a knowledge-base entry may still outrank it in a report)
            events = scan_lines(KB, [line], "x").generic
            assert [e.os_error for e in events][:1] == [row.id], (row.id, line, events)


def test_json_marks_generic_findings(tmp_path):
    from typer.testing import CliRunner

    from sdsetup import cli

    log = tmp_path / "console.log"
    log.write_text(COMFY_NODE_MISSING_MODULE, encoding="utf-8")
    result = CliRunner().invoke(cli.app, ["doctor", "--log", str(log), "--json"])
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    finding = doc["data"]["findings"][0]
    assert finding["generic"] is True and finding["id"] == "generic-missing-module"
    human = CliRunner().invoke(cli.app, ["doctor", "--log", str(log)])
    assert "generic" in human.stdout and "comfyui-some-tagger" in human.stdout


@pytest.mark.parametrize("text, command", [
    ("PS C:\\ComfyUI> pyhton main.py\npyhton : The term 'pyhton' is not recognized as the name of a cmdlet, function, script file, or operable program.\n", "pyhton"),
    ("PS G:\\ComfyUI> foo/python.exe -m pip\nfoo/python.exe : 无法将“foo/python.exe”项识别为 cmdlet、函数、脚本文件或可运行程序的名称。\n", "foo/python.exe"),
])
def test_powershell_says_a_command_was_not_found_in_english_and_chinese(text, command):
    found = findings(text)
    assert found and found[0].entry.id == "generic-cmd-error" and f"'{command}'" in found[0].entry.title


def test_a_traceback_the_paste_cuts_off_still_names_where_it_happened():
    text = ("Installing requirements\nTraceback (most recent call last):\n  File \"D:\\forge\\launch.py\", line 54, in <module>\n"
            "    main()\n  File \"D:\\forge\\extensions\\sd-webui-foo\\install.py\", line 3, in <module>\n")
    found = findings(text)
    assert [r.entry.id for r in found] == ["generic-truncated-traceback"]
    assert "sd-webui-foo" in found[0].entry.title


def test_comfyuis_error_report_and_prefixed_lines_are_read():
    report = "# ComfyUI Error Report\n## Error Details\n- **Node ID:** 3\n- **Exception Type:** torch.OutOfMemoryError\n" \
             "- **Exception Message:** Allocation on device \n## Stack Trace\n"
    assert ids(report)[:1] == ["cuda-oom"]
    docker = "comfyui     | Traceback (most recent call last):\ncomfyui     |   File \"/app/ComfyUI/custom_nodes/x-node/__init__.py\", line 1, in <module>\n" \
             "comfyui     | ModuleNotFoundError: No module named 'piexif'\n"
    found = findings(docker)
    assert found[0].entry.id == "generic-missing-module" and "x-node" in found[0].entry.title


@pytest.mark.parametrize("final, expected", [
    ("RuntimeError: [enforce fail at alloc_cpu.cpp:114] data. DefaultCPUAllocator: not enough memory: you tried to allocate 117964800 bytes.",
     "generic-out-of-memory"),
    ("RuntimeError: MPS backend out of memory (MPS allocated: 9.06 GB, other allocations: 8.84 GB, max allowed: 18.13 GB).",
     "generic-out-of-memory"),
    ("RuntimeError: HIP error: invalid device function", "generic-gpu-error"),
    ("RuntimeError: CUDA error: an illegal memory access was encountered", "generic-gpu-error"),
    ("RuntimeError: Error(s) in loading state_dict for UNetModel:", "generic-corrupt-model"),
    ("_pickle.UnpicklingError: invalid load key, '<'.", "generic-corrupt-model"),
    ("requests.exceptions.ConnectTimeout: HTTPSConnectionPool(host='civitai.com', port=443): Max retries exceeded", "generic-network"),
])
def test_each_failure_class_gets_its_own_next_step(final, expected):
    text = ("Traceback (most recent call last):\n  File \"/home/u/ComfyUI/execution.py\", line 151, in recursive_execute\n"
            "    output_data = get_output_data(obj, input_data_all)\n" + final + "\n")
    found = findings(text)
    assert found and found[0].entry.generic, ids(text)
    if found[0].entry.id != expected:  # a knowledge-base entry may know it better; the class still must be right
        pytest.fail(f"{ids(text)} for {final!r}")
    assert "ComfyUI core" in found[0].entry.title or expected in ("generic-network",)


def test_the_anchor_prefilters_let_every_known_wording_through_and_stop_plain_lines():
    # The prefilters look for each literal's rarest part first; a line holding any literal must still pass,
    # whatever sits around it, or a finding would be lost on a big log.
    from sdsetup.doctor import generic, match
    from sdsetup.doctor.kb import load_kb

    tracker = generic.GenericTracker(generic.load_table())
    literals = generic._literals_cache[id(tracker.table)]
    assert literals
    for literal in literals:
        for line in (literal, f"12:00:01 | {literal} (at step 3)", f"{literal}{literal[:2]}"):
            assert tracker.passes(line), (literal, line)
    compiled = match._Compiled(load_kb())
    for literal in compiled.literals:
        assert compiled.candidate(f"  {literal}  "), literal
    for plain in ("Loading weights [6ce0161689] from /models/v1-5-pruned-emaonly.safetensors",
                  "Running on local URL:  http://127.0.0.1:7860", "100%|██████████| 20/20 [00:02<00:00,  8.11it/s]"):
        assert not tracker.passes(plain) and not compiled.candidate(plain), plain


COMFY_NODE_NATIVE_LIBRARY = """\
** Python executable: /home/ana/ComfyUI/venv/bin/python
Import times for custom nodes:
Cannot import /home/ana/ComfyUI/custom_nodes/comfyui_facetools module for custom nodes: libGL.so.1: cannot open shared object file: No such file or directory
   0.0 seconds: /home/ana/ComfyUI/custom_nodes/websocket_image_save.py
   0.4 seconds (IMPORT FAILED): /home/ana/ComfyUI/custom_nodes/comfyui_facetools

Starting server
"""


def test_a_custom_node_import_failure_keeps_its_reason_not_the_import_lists_summary_line():
    # the reason a node failed sits on its "Cannot import ..." line; the import list repeats only the folder
    assert ids(COMFY_NODE_NATIVE_LIBRARY)[0] == "libgl-missing", "a known cause still comes first"
    text = COMFY_NODE_NATIVE_LIBRARY.replace("libGL.so.1: cannot open shared object file: No such file or directory",
                                             "DLL load failed while importing _pywrap_dlib: The specified module could not be found.")
    found = [r for r in findings(text) if r.entry.id.startswith("generic")]
    assert found and "comfyui_facetools" in found[0].entry.title, [r.entry.id for r in found]
    evidence = " ".join(line for _, line in found[0].hit.evidence)
    assert "DLL load failed while importing _pywrap_dlib" in evidence, evidence
    assert any("--force-reinstall" in step for step in found[0].entry.fix.steps)
