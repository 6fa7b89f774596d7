"""Messages in the user's language: choosing it, the zh-CN catalog, the --json contract, GBK consoles."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sdsetup import i18n
from sdsetup.errors import ExitCode, SdsetupError, usage_error
from sdsetup.i18n import CHINESE, ENGLISH, Msg, t

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import i18n_extract  # noqa: E402

PO = ROOT / "sdsetup" / "locale" / "zh_CN" / "LC_MESSAGES" / "sdsetup.po"


def _has_cjk(text: str) -> bool:
    return any("\u4e00" <= char <= "\u9fff" for char in text)


def _sdsetup(args, *, lang_env: dict[str, str], encoding: str = "utf-8", **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("SDSETUP_LANG", "LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE")}
    env.update(PYTHONPATH=str(ROOT), **lang_env)
    result = subprocess.run([sys.executable, "-m", "sdsetup", *args], capture_output=True, env=env, timeout=60, **kwargs)
    result.out = result.stdout.decode(encoding)  # type: ignore[attr-defined]
    result.err = result.stderr.decode(encoding)  # type: ignore[attr-defined]
    return result


# -- choosing the language ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "flag, env, config, langid, expected",
    [
        (None, {}, None, None, ENGLISH),
        (None, {"LANG": "zh_CN.UTF-8"}, None, None, CHINESE),
        (None, {"LANG": "zh_TW.Big5"}, None, None, CHINESE),  # any zh variant: the one Chinese catalog
        (None, {"LANG": "zh_CN.GB18030"}, None, None, CHINESE),
        (None, {"LANG": "fr_FR.UTF-8"}, None, None, ENGLISH),
        (None, {"LANG": "C.UTF-8"}, None, None, ENGLISH),
        (None, {"LC_ALL": "en_US.UTF-8", "LANG": "zh_CN.UTF-8"}, None, None, ENGLISH),  # LC_ALL first
        (None, {"LC_ALL": "", "LC_MESSAGES": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}, None, None, CHINESE),  # empty = unset
        (None, {"LANG": "en_US.UTF-8"}, "zh-CN", None, CHINESE),  # config beats the locale
        (None, {"SDSETUP_LANG": "en", "LANG": "zh_CN.UTF-8"}, "zh-CN", None, ENGLISH),  # env beats config
        ("zh", {"SDSETUP_LANG": "en"}, "en", None, CHINESE),  # the flag beats everything
        (None, {"SDSETUP_LANG": "de"}, None, None, ENGLISH),  # no German catalog: English
        (None, {}, None, 0x0804, CHINESE),  # recorded GetUserDefaultUILanguage values: zh-CN
        (None, {}, None, 0x0404, CHINESE),  # zh-TW
        (None, {}, None, 0x0C04, CHINESE),  # zh-HK
        (None, {}, None, 0x0409, ENGLISH),  # en-US
        (None, {}, None, 0x0411, ENGLISH),  # ja-JP
        (None, {"LANG": "en_US.UTF-8"}, None, 0x0804, ENGLISH),  # a locale variable (MSYS, Git Bash) wins
    ],
)
def test_language_is_chosen_like_the_platform(flag, env, config, langid, expected):
    assert i18n.choose(flag, env, config, langid) == expected


@pytest.mark.parametrize(
    "argv, value, rest",
    [
        (["fetch", "--lang", "zh-CN", "URL"], "zh-CN", ["fetch", "URL"]),
        (["--lang=en", "check", "--json"], "en", ["check", "--json"]),
        (["fetch", "URL"], None, ["fetch", "URL"]),
        (["fetch", "--", "--lang", "x"], None, ["fetch", "--", "--lang", "x"]),
        (["fetch", "--lang"], "", ["fetch"]),  # no value: setup() reports it
    ],
)
def test_lang_flag_is_taken_out_wherever_it_stands(argv, value, rest):
    assert i18n.split_lang_flag(argv) == (value, rest)


def test_config_file_lang_is_read_and_accepted_by_settings(tmp_path, monkeypatch):
    from sdsetup.settings import config_lang, load_settings

    config = tmp_path / "c.toml"
    config.write_text('lang = "zh-CN"\n', encoding="utf-8")
    env = {"SDSETUP_CONFIG": str(config)}
    assert config_lang([], env) == "zh-CN"
    assert config_lang(["--config", str(config)], {}) == "zh-CN"
    load_settings({}, env)  # not an "unknown key"
    config.write_text('proxy = "http://x:1"\n', encoding="utf-8")
    assert config_lang([], env) is None


# -- the catalog ---------------------------------------------------------------------------------------
def _entries():
    return [e for e in i18n.parse_po(PO.read_text(encoding="utf-8")) if e.msgid and not e.obsolete]


def test_every_translation_keeps_the_placeholders_of_its_msgid():
    bad = [(e.msgid, e.msgstr) for e in _entries() if e.msgstr and
           i18n_extract.placeholders_of(e.msgid) != i18n_extract.placeholders_of(e.msgstr)]
    assert bad == []


def test_every_routed_msgid_has_a_zh_cn_translation():
    """A string the code sends through the catalog (t(), N_(), cli.py's help) is translated."""
    catalog = i18n.load_catalog(CHINESE)
    routed = [f for f in i18n_extract.scan() if f.kind == "routed" or (f.kind == "help" and f.path == "sdsetup/cli.py")]
    assert len(routed) > 80
    allowed = i18n_extract.read_allowlist()  # the second wave's backlog (routed by --rewrite, not yet translated)
    missing = [f"{f.path}:{f.line}: {f.template}" for f in i18n_extract.untranslated(routed, catalog) if f.key not in allowed]
    assert missing == []
    for entry in _entries():
        if entry.msgstr:
            assert _has_cjk(entry.msgstr) or entry.msgstr == entry.msgid, entry.msgid


def test_no_new_user_facing_string_lands_untranslated():
    """New errors, hints, help and progress text go through t() with a zh-CN entry.

    tests/i18n_untranslated.txt lists today's strings that still do not; it may only shrink.
    """
    catalog = i18n.load_catalog(CHINESE)
    allowed = i18n_extract.read_allowlist()
    new = [f"{f.path}:{f.line}: {f.kind}: {i18n_extract.escape(f.template)}"
           for f in i18n_extract.untranslated(i18n_extract.scan(), catalog) if f.key not in allowed]
    assert new == [], ("route these through sdsetup.i18n.t() (scripts/i18n_extract.py --rewrite FILE), then "
                       "scripts/i18n_extract.py --update-po and translate them in " + str(PO.relative_to(ROOT)))


def test_catalog_is_in_step_with_the_code():
    """--update-po has been run: every user-facing msgid has an entry, so translators see it."""
    wanted = set(i18n_extract.catalog_msgids(i18n_extract.scan()))
    have = {(e.msgctxt, e.msgid) for e in _entries()}
    assert sorted(m for _, m in wanted - have) == [], "run scripts/i18n_extract.py --update-po"


def test_message_ids_are_unique():
    ids = {}
    for entry in _entries():
        ids.setdefault(i18n.message_id(entry.msgid, entry.msgctxt), []).append(entry.msgid)
    assert [v for v in ids.values() if len(v) > 1] == []


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="GNU gettext's msgfmt is not installed")
def test_standard_gettext_tools_accept_the_catalog(tmp_path):
    result = subprocess.run(["msgfmt", "--check", "-o", str(tmp_path / "sdsetup.mo"), str(PO)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_po_parser_reads_escapes_contexts_and_skips_fuzzy():
    text = ('msgid ""\nmsgstr "Language: zh_CN\\n"\n\n'
            '#, fuzzy\nmsgid "a"\nmsgstr "甲"\n\n'
            'msgctxt "net.gone"\nmsgid "b \\"{x}\\""\nmsgstr ""\n"乙 \\"{x}\\"\\n"\n"第二行"\n\n'
            '#~ msgid "old"\n#~ msgstr "旧"\n')
    entries = i18n.parse_po(text)
    assert [(e.msgctxt, e.msgid, e.msgstr, e.obsolete) for e in entries[1:]] == [
        (None, "a", "甲", False), ("net.gone", 'b "{x}"', '乙 "{x}"\n第二行', False), (None, "old", "旧", True)]
    assert "fuzzy" in entries[1].flags


# -- Msg: a str that remembers its id ------------------------------------------------------------------
def test_msg_is_a_str_in_the_chosen_language_with_a_stable_id():
    i18n.set_lang(ENGLISH)
    english = t("could not download {name}: {reasons}", name="x.bin", reasons="timed out")
    i18n.set_lang(CHINESE)
    chinese = t("could not download {name}: {reasons}", name="x.bin", reasons="timed out")
    assert english == "could not download x.bin: timed out"
    assert chinese == "无法下载 x.bin：timed out" and chinese.english == english
    assert english.id == chinese.id == i18n.message_id("could not download {name}: {reasons}")
    assert isinstance(chinese + "!", str) and "x.bin" in chinese and f"{chinese}" == str(chinese)


def test_a_broken_translation_shows_the_english_message(monkeypatch):
    monkeypatch.setitem(i18n._catalogs, CHINESE, {"copy {src}": "复制 {source}"})
    assert Msg("copy {src}", {"src": "a"}, lang=CHINESE) == "copy a"


def test_error_json_has_the_same_keys_and_ids_in_both_languages():
    docs = {}
    for lang in (ENGLISH, CHINESE):
        i18n.set_lang(lang)
        error = SdsetupError(t("{dest} is being downloaded by {holder}", dest="/x", holder="pid 7"),
                             t("wait for it to finish, then run again"), ExitCode.BUSY)
        docs[lang] = error.to_json()
    assert docs[ENGLISH].keys() == docs[CHINESE].keys()
    for key in ("message_id", "hint_id", "kind", "exit_code"):
        assert docs[ENGLISH][key] == docs[CHINESE][key] and docs[ENGLISH][key] is not None
    assert docs[CHINESE]["message"] == "/x 正在被 pid 7 下载"
    assert usage_error("plain").to_json()["message_id"] is None  # not yet in the catalog: no id, same keys


# -- the command line -----------------------------------------------------------------------------------
ZH = {"LANG": "zh_CN.UTF-8"}
EN = {"LANG": "en_US.UTF-8"}


@pytest.mark.parametrize(
    "args, english, chinese",
    [
        (["fetch", "--bogus", "x"], "No such option: --bogus", "没有这个选项：--bogus"),
        (["fetch"], "Missing argument 'urls'.", "缺少参数 'urls'。"),
        (["nosuch"], "No such command 'nosuch'.", "没有这个命令：'nosuch'。"),
    ],
)
def test_usage_errors_speak_the_locale_language(args, english, chinese):
    zh = _sdsetup(args, lang_env=ZH)
    assert zh.returncode == 2 and zh.out == ""
    lines = zh.err.strip().splitlines()
    assert lines[0] == f"error: {chinese}", zh.err
    assert lines[1].startswith("hint: 请查看 `sdsetup") and "--help`" in lines[1]
    en = _sdsetup(args, lang_env=EN)
    assert en.returncode == 2 and en.err.strip().splitlines()[0] == f"error: {english}"


def test_lang_flag_and_env_override_the_locale_and_an_unknown_lang_is_a_usage_error():
    assert "没有这个选项" in _sdsetup(["fetch", "--bogus", "--lang", "zh-CN"], lang_env=EN).err
    assert "No such option" in _sdsetup(["--lang", "en", "fetch", "--bogus"], lang_env=ZH).err
    assert "没有这个选项" in _sdsetup(["fetch", "--bogus"], lang_env={**EN, "SDSETUP_LANG": "zh_CN"}).err
    bad = _sdsetup(["--lang", "klingon", "check"], lang_env=EN)
    assert bad.returncode == 2 and bad.err.splitlines() == ["error: --lang klingon: unknown language",
                                                            "hint: use --lang en or --lang zh-CN"]
    missing = _sdsetup(["fetch", "--lang"], lang_env=ZH)
    assert missing.returncode == 2 and missing.err.splitlines() == ["error: --lang 后面需要写语言", "hint: 请使用 --lang en 或 --lang zh-CN"]


def test_help_is_translated_and_the_english_help_is_unchanged():
    zh = _sdsetup(["fetch", "--help"], lang_env=ZH)
    en = _sdsetup(["fetch", "--help"], lang_env=EN)
    assert zh.returncode == en.returncode == 0
    assert "多连接下载一个文件" in zh.out and "预期的文件大小（字节）" in zh.out
    assert "Download one file with several connections" in en.out and not _has_cjk(en.out)


def _shape(value):
    """The JSON document with every string replaced: what must not change with the language."""
    if isinstance(value, dict):
        return {key: (value[key] if key.endswith("_id") or key in ("kind", "command") else _shape(value[key])) for key in value}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return type(value).__name__


@pytest.mark.parametrize("args", [["fetch", "--bogus", "--json"], ["fetch", "--json"], ["mirrors", "list", "--json"]])
def test_json_documents_have_byte_identical_keys_across_languages(args):
    en = _sdsetup(args, lang_env=EN)
    zh = _sdsetup(args, lang_env=ZH)
    assert en.returncode == zh.returncode
    en_doc, zh_doc = json.loads(en.out), json.loads(zh.out)
    assert _shape(en_doc) == _shape(zh_doc)
    if "error" in en_doc:
        assert en_doc["error"]["message_id"] and _has_cjk(zh_doc["error"]["message"])


# -- consoles that are not UTF-8 -------------------------------------------------------------------------
@pytest.mark.parametrize("encoding", ["gbk", "cp936"])
def test_a_gbk_console_shows_chinese_and_never_raises(encoding):
    assert pytest.raises(UnicodeEncodeError, "😀".encode, encoding)  # a character GBK lacks, in the message
    result = _sdsetup(["fetch", "--bogus😀", "--json"], lang_env={**ZH, "PYTHONIOENCODING": encoding}, encoding=encoding)
    assert result.returncode == 2 and "UnicodeEncodeError" not in result.err and "Traceback" not in result.err
    assert json.loads(result.out)["error"]["message"] == "没有这个选项：--bogus?"  # Chinese intact, the emoji replaced
    assert result.err.splitlines()[0].startswith("error: 没有这个选项：--bogus")  # the emoji escaped, not a crash
    helped = _sdsetup(["--help"], lang_env={**ZH, "PYTHONIOENCODING": encoding}, encoding=encoding)
    assert helped.returncode == 0 and "安装 Stable Diffusion web" in helped.out


def test_a_cp437_console_replaces_what_it_cannot_show():
    result = _sdsetup(["fetch", "--bogus", "--json"], lang_env={**ZH, "PYTHONIOENCODING": "cp437"}, encoding="cp437")
    assert result.returncode == 2 and "Traceback" not in result.err
    doc = json.loads(result.out)  # stdout is strict by default: Chinese in the document would raise
    assert doc["error"]["kind"] == "usage" and doc["error"]["message"].startswith("??????")
    assert result.err.startswith("error: ")


def test_setup_console_leaves_utf8_and_lenient_streams_alone():
    import io

    strict = io.TextIOWrapper(io.BytesIO(), encoding="gbk")
    utf8 = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    i18n.setup_console([strict, utf8])
    assert strict.errors == "replace" and utf8.errors == "strict"
    strict.write("中文 😀")  # no UnicodeEncodeError
    strict.flush()
    assert strict.buffer.getvalue().decode("gbk") == "中文 ?"


# -- the extractor ---------------------------------------------------------------------------------------
SAMPLE = '''from sdsetup.errors import SdsetupError, ExitCode


def fail(spec, free, sizes):
    raise SdsetupError(
        f"not enough space for {spec.name}: {human(free)} free, {len(sizes)} files" + "!",
        "free up space and run again",
        ExitCode.DISK,
    )


def human(n):
    return f"{n} B"


def log(message):
    import sys

    sys.stderr.write(f"error: {message}\\n")  # i18n: keep
'''


def test_extractor_finds_errors_and_rewrite_keeps_the_english_text(tmp_path, monkeypatch):
    pkg = tmp_path / "sample.py"
    pkg.write_text(SAMPLE, encoding="utf-8")
    monkeypatch.setattr(i18n_extract, "ROOT", tmp_path)
    found = i18n_extract.scan(tmp_path)
    assert [(f.kind, f.template) for f in found] == [
        ("error", "not enough space for {name}: {free} free, {sizes} files!"), ("hint", "free up space and run again")]

    def message() -> tuple[str, str]:
        namespace: dict = {}
        exec(compile(pkg.read_text(encoding="utf-8"), str(pkg), "exec"), namespace)
        spec = type("Spec", (), {"name": "model.bin"})()
        with pytest.raises(SdsetupError) as info:
            namespace["fail"](spec, 5, [1, 2])
        return info.value.message, info.value.hint

    before = message()
    assert i18n_extract.rewrite(pkg, {"error", "hint"}) == 2
    assert "from sdsetup.i18n import t" in pkg.read_text(encoding="utf-8")
    after = message()
    assert after == before == ("not enough space for model.bin: 5 B free, 2 files!", "free up space and run again")
    assert isinstance(after[0], Msg) and i18n_extract.scan(tmp_path)[0].kind == "routed"


def test_catalog_cache_follows_edits_of_the_po_file_and_survives_a_bad_cache(tmp_path, monkeypatch):
    po = tmp_path / "zh_CN" / "LC_MESSAGES" / "sdsetup.po"
    po.parent.mkdir(parents=True)
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    monkeypatch.setattr(i18n, "_catalogs", {})
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    po.write_text('msgid "disk full"\nmsgstr "磁盘满了"\n\n#, fuzzy\nmsgid "old"\nmsgstr "旧"\n', encoding="utf-8")
    assert i18n.load_catalog(CHINESE) == {"disk full": "磁盘满了"}
    caches = list((po.parent / "__pycache__").iterdir())
    assert len(caches) == 1
    po.write_text('msgid "disk full"\nmsgstr "磁盘空间已满"\n', encoding="utf-8")  # a translator's edit
    i18n._catalogs.clear()
    assert i18n.load_catalog(CHINESE) == {"disk full": "磁盘空间已满"}
    caches[0].write_bytes(b"\x00garbage")
    i18n._catalogs.clear()
    assert i18n.load_catalog(CHINESE) == {"disk full": "磁盘空间已满"}


def test_fast_loader_agrees_with_the_full_parser_on_the_real_catalog():
    text = PO.read_text(encoding="utf-8")
    full = {i18n._key(e.msgctxt, e.msgid): e.msgstr for e in i18n.parse_po(text)
            if e.msgid and e.msgstr and not e.obsolete and "fuzzy" not in e.flags}
    assert i18n._po_table(text) == full and len(full) > 150


def test_status_items_get_an_id_beside_each_text_in_every_language():
    shapes = {}
    for lang in (ENGLISH, CHINESE):
        i18n.set_lang(lang)
        item = i18n.with_ids({"id": "disk", "status": "fail", "name": "disk", "value": "3 GB free",
                              "fix": t("free up space there (or choose another folder) and run again")})
        shapes[lang] = item
    assert shapes[ENGLISH].keys() == shapes[CHINESE].keys()
    assert shapes[ENGLISH]["fix_id"] == shapes[CHINESE]["fix_id"] is not None and shapes[ENGLISH]["value_id"] is None
    assert shapes[CHINESE]["fix"] == "请清理出空间（或换一个文件夹）后再运行"


# -- issue 16: a run under a Chinese locale speaks Chinese end to end ----------------------------------
@pytest.mark.slow  # the engine retries a refused connection with backoff (~20 s); both languages run at once
def test_a_network_failure_under_a_chinese_locale_has_a_chinese_error_and_hint_even_on_a_gbk_console(tmp_path):
    args = [sys.executable, "-m", "sdsetup", "fetch", "http://127.0.0.1:1/x.bin", "-o", str(tmp_path / "X"), "--json"]
    base = {k: v for k, v in os.environ.items() if k not in ("SDSETUP_LANG", "LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE")}
    runs = {name: (subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,  # port 1: connection refused
                                    env={**base, "PYTHONPATH": str(ROOT), **env}), encoding)
            for name, env, encoding in (("en", EN, "utf-8"), ("zh", {**ZH, "PYTHONIOENCODING": "gbk"}, "gbk"))}
    out, err, code = {}, {}, {}
    for name, (process, encoding) in runs.items():
        stdout, stderr = process.communicate(timeout=120)
        out[name], err[name], code[name] = json.loads(stdout.decode(encoding)), stderr.decode(encoding), process.returncode
    assert code == {"en": 3, "zh": 3}
    assert "UnicodeEncodeError" not in err["zh"] and "Traceback" not in err["zh"]
    error, hint = [line for line in err["zh"].splitlines() if line.startswith(("error: ", "hint: "))]
    assert error.startswith("error: 无法下载 X：") and "http://127.0.0.1:1/x.bin" in error
    assert hint.startswith("hint: 请检查网络") and "--mirror cn" in hint and "sdsetup mirrors probe" in hint
    assert "error: could not download X: http://127.0.0.1:1/x.bin" in err["en"] and not _has_cjk(err["en"])
    assert _shape(out["en"]) == _shape(out["zh"])
    assert out["en"]["error"]["hint_id"] == out["zh"]["error"]["hint_id"] is not None
    assert _has_cjk(out["zh"]["error"]["hint"]) and out["zh"]["error"]["details"] == out["en"]["error"]["details"]
    assert not (tmp_path / "X").exists()


def test_sdsetups_own_usage_errors_speak_chinese():
    zh = _sdsetup(["fetch", "--sha256", "zz", "http://127.0.0.1:1/x.bin"], lang_env=ZH)
    assert zh.returncode == 2
    assert zh.err.splitlines() == ["error: --sha256 “zz”不是有效的 sha256", "hint: 请给出该文件 sha256 的 64 位十六进制数字"]


DOCTOR_LOG = ROOT / "tests" / "fixtures" / "logs" / "cuda-oom.log"


def test_a_doctor_finding_under_a_chinese_locale_is_chinese_with_the_same_json_keys():
    from sdsetup.doctor.kb import load_kb

    entry = next(e for e in load_kb().entries if e.id == "cuda-oom")
    chinese, english = entry.text("zh-CN"), entry.text("en")
    zh = _sdsetup(["doctor", "--log", str(DOCTOR_LOG)], lang_env=ZH)
    assert chinese.title in zh.out and chinese.steps[0][:20] in zh.out.replace("\n", "")
    assert english.title not in zh.out
    docs = {}
    for name, env in (("en", EN), ("zh", ZH)):
        result = _sdsetup(["doctor", "--log", str(DOCTOR_LOG), "--json"], lang_env=env)
        docs[name] = json.loads(result.out)
    assert _shape(docs["en"]) == _shape(docs["zh"])
    finding = next(f for f in docs["zh"]["data"]["findings"] if f["id"] == "cuda-oom")
    assert finding["title"] == chinese.title and finding["fix"]["steps"] == list(chinese.steps)
    assert next(f for f in docs["en"]["data"]["findings"] if f["id"] == "cuda-oom")["title"] == english.title


def test_check_items_carry_ids_and_the_same_keys_in_both_languages(tmp_path):
    args = ["check", "--dir", str(tmp_path / "sd"), "--json"]
    docs = {name: json.loads(_sdsetup(args, lang_env=env).out) for name, env in (("en", EN), ("zh", ZH))}
    en_items, zh_items = docs["en"]["data"]["items"], docs["zh"]["data"]["items"]
    assert [list(i) for i in en_items] == [list(i) for i in zh_items]
    assert [(i["id"], i["status"], i["name_id"], i["fix_id"]) for i in en_items] == \
           [(i["id"], i["status"], i["name_id"], i["fix_id"]) for i in zh_items]
    ram_en = next(i for i in en_items if i["id"] == "ram")
    ram_zh = next(i for i in zh_items if i["id"] == "ram")
    assert ram_en["name"] == "RAM" and ram_zh["name"] == "内存" and ram_en["name_id"] == i18n.message_id("RAM")
    human = _sdsetup(args[:-1], lang_env=ZH).out
    assert "[ok  ] 内存" in human or "[WARN] 内存" in human or "[FAIL] 内存" in human
    assert human.rstrip().endswith("。")  # the verdict
