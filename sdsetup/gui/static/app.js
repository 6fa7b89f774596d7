// sdsetup gui: the page. Every request carries the token in a header (EventSource, which cannot set
// one, in the query). Text from the server is only ever set as textContent, never parsed as HTML.
"use strict";
(() => {
  const TOKEN = document.querySelector('meta[name="sdsetup-token"]').content;
  const $ = (id) => document.getElementById(id);
  let S = {};
  let info = { dir: "", uis: [], mirrors: [], profiles: [] };

  // ---------------------------------------------------------------- helpers
  function fmt(template, args) {
    return String(template || "").replace(/\{(\w+)\}/g, (m, k) => (k in args ? String(args[k]) : m));
  }
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  // `code` spans in the knowledge base's and the fixes' text, as <code>, without any HTML parsing
  function rich(text) {
    const out = [];
    String(text || "").split(/(`[^`]+`)/).forEach((part) => {
      if (part.startsWith("`") && part.endsWith("`") && part.length > 2) out.push(el("code", { text: part.slice(1, -1) }));
      else if (part) out.push(part);
    });
    return out;
  }
  function withToken(path) {
    return path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(TOKEN);
  }
  async function api(path, body) {
    const options = { headers: { "X-Sdsetup-Token": TOKEN }, cache: "no-store" };
    if (body !== undefined) {
      options.method = "POST";
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, options);
    } catch (e) {
      $("lost").hidden = false;
      throw e;
    }
    $("lost").hidden = true;
    return response.json();
  }
  function human(bytes) {
    if (bytes === null || bytes === undefined) return "?";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let value = bytes, unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
    return (unit ? value.toFixed(1) : String(value)) + " " + units[unit];
  }
  function folder() { return $("folder").value.trim(); }
  function busy(button, on) { button.disabled = on; button.setAttribute("aria-busy", on ? "true" : "false"); }
  function statusBadge(status, label) {
    return el("span", { class: "badge " + status, text: label || S["status_" + status] || status });
  }
  function errorBanner(doc) {
    const error = doc.error || {};
    return el("div", { class: "banner fail", role: "alert" }, error.message || S.result_failed,
      error.hint ? el("span", { class: "hint" }, S.hint + " ", ...rich(error.hint)) : null);
  }
  function summaryBanner(doc) {
    if (!doc.ok && doc.error) return errorBanner(doc);
    const warned = (doc.warnings || []).length > 0;
    const cls = doc.ok ? (warned ? "warn" : "ok") : "fail";
    return el("div", { class: "banner " + cls, role: doc.ok ? "status" : "alert" }, doc.summary || (doc.ok ? S.result_ok : S.result_failed));
  }
  function terminalText(doc) {
    if (!doc.text) return null;
    return el("details", {}, el("summary", { text: S.terminal_text }), el("pre", { text: doc.text }));
  }
  function itemsTable(items) {
    const rows = items.map((item) =>
      el("tr", { "data-status": item.status },
        el("td", {}, statusBadge(item.status)),
        el("th", { scope: "row", text: item.name }),
        el("td", { class: "value", text: item.value === undefined ? "" : String(item.value) }),
        el("td", { class: "fix" }, ...(item.fix && item.status !== "ok" ? rich(item.fix) : []))));
    return el("div", { class: "table-wrap" },
      el("table", { class: "items" },
        el("thead", {}, el("tr", {}, el("th", { scope: "col", class: "col-status", text: S.col_status }),
          el("th", { scope: "col", class: "col-item", text: S.col_item }),
          el("th", { scope: "col", class: "col-value", text: S.col_value }), el("th", { scope: "col", class: "col-fix", text: S.col_fix }))),
        el("tbody", {}, rows)));
  }
  // A job's progress: server-sent events, then its result.
  function follow(job, handlers) {
    return new Promise((resolve) => {
      const source = new EventSource(withToken(`/api/jobs/${job}/events`));
      for (const kind of ["line", "step", "file"]) {
        source.addEventListener(kind, (e) => handlers[kind] && handlers[kind](JSON.parse(e.data)));
      }
      source.addEventListener("end", async () => {
        source.close();
        const status = await api(`/api/jobs/${job}`);
        resolve(status.result || { ok: false });
      });
    });
  }
  async function startJob(path, body, out, waiting) {
    out.replaceChildren(el("p", { class: "spinner", role: "status", text: waiting }));
    const started = await api(path, body);
    if (!started.ok) { out.replaceChildren(errorBanner(started)); return null; }
    return started.job;
  }

  // ---------------------------------------------------------------- pages
  const PAGES = ["machine", "install", "verify", "doctor", "models", "webui"];
  let shown = null;
  function showPage(name, focus) {
    if (!PAGES.includes(name)) name = "machine";
    for (const page of PAGES) $("page-" + page).hidden = page !== name;
    document.querySelectorAll("nav a").forEach((a) => {
      if (a.dataset.page === name) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    });
    if (focus) { const h = $("h-" + name); h.setAttribute("tabindex", "-1"); h.focus(); }
    if (shown !== name) {
      shown = name;
      if (name === "machine" && !$("check-out").hasChildNodes()) runCheck();
      if (name === "doctor") loadLogs();
      if (name === "webui") webuiStatus();
      if (name === "models") { listModels(); listExt(); }
    }
  }

  // this machine
  async function runCheck() {
    const button = $("check-run"), out = $("check-out");
    busy(button, true);
    out.replaceChildren(el("p", { class: "spinner", role: "status", text: S.checking }));
    try {
      const doc = await api("/api/check", { dir: folder() });
      out.replaceChildren(summaryBanner(doc), doc.data ? itemsTable(doc.data.items) : "", terminalText(doc) || "");
    } finally { busy(button, false); }
  }

  // install
  function buildInstallForm() {
    const uiNames = { a1111: "AUTOMATIC1111", forge: "Forge", comfyui: "ComfyUI" };
    $("ui-choices").replaceChildren(...info.uis.map((ui, i) =>
      el("label", {}, el("input", { type: "radio", name: "ui", value: ui, checked: i === 0 }), uiNames[ui] || ui)));
    const mirrors = [...info.mirrors.map((m) => [m, S["mirror_" + m]]), ["proxy", S.mirror_proxy],
      ...info.profiles.map((p) => [p, fmt(S.mirror_other, { name: p })])];
    $("mirror-choices").replaceChildren(...mirrors.map(([value, label], i) =>
      el("label", {}, el("input", { type: "radio", name: "mirror", value, checked: i === 0 }), label)));
    document.querySelectorAll('input[name="mirror"]').forEach((r) => r.addEventListener("change", () => {
      $("proxy-field").hidden = document.querySelector('input[name="mirror"]:checked').value !== "proxy";
    }));
  }
  function installView() {
    const steps = el("ol", { class: "steps", "aria-label": S.steps });
    const log = el("pre", { role: "log", "aria-label": S.log });
    const view = el("div", {}, el("h3", { text: S.steps }), steps,
      el("details", {}, el("summary", { text: S.log }), log));
    const stepNodes = {}, files = {};
    let current = null;
    const labels = { running: S.step_running, done: S.step_done, "done-before": S.step_done_before, skipped: S.step_skipped, failed: S.step_failed };
    return {
      view,
      line(e) {
        log.append(e.text + "\n");
        while (log.childNodes.length > 400) log.removeChild(log.firstChild);
      },
      step(e) {
        let node = stepNodes[e.id];
        if (!node) {
          node = stepNodes[e.id] = el("li", { "data-step": e.id },
            el("div", { class: "step-head" }, el("span", { class: "badge" }), el("span", { class: "title" }), el("span", { class: "secs" })),
            el("div", { class: "files" }));
          steps.append(node);
        }
        const badge = node.querySelector(".badge");
        badge.className = "badge " + e.status;
        badge.textContent = labels[e.status] || e.status;
        node.querySelector(".title").textContent = `${e.number}/${e.total} ${e.title}`;
        node.querySelector(".secs").textContent = e.seconds !== undefined ? `${e.seconds.toFixed(1)} s` : (e.reason || "");
        if (e.status === "running") current = node;
        else {  // a finished step keeps one line about its downloads; the running one shows each file
          const rows = [...node.querySelectorAll(".file")];
          node.classList.toggle("closed", rows.length > 0);
          if (rows.length) {
            const bytes = rows.reduce((sum, row) => sum + (files[row.dataset.file] ? files[row.dataset.file].total || 0 : 0), 0);
            const summary = fmt(rows.length === 1 ? S.one_file : S.files_summary, { count: rows.length, size: human(bytes) });
            let line = node.querySelector(".files-summary");
            if (!line) { line = el("div", { class: "files-summary" }); node.append(line); }
            line.textContent = summary;
          }
        }
      },
      file(e) {
        const key = e.name;
        let f = files[key];
        if (!f) {
          const bar = el("progress", { max: 1, value: 0, "aria-label": e.name });
          const meta = el("div", { class: "meta" }, el("span", { class: "bytes" }), el("span", { class: "rate" }), el("span", { class: "host" }));
          f = files[key] = { node: el("div", { class: "file", "data-file": e.name }, el("div", { class: "name", text: e.name }), bar, meta),
            bar, meta, lastT: e.t, lastDone: e.done, rate: 0 };
          (current ? current.querySelector(".files") : steps).append(f.node);
        }
        const dt = e.t - f.lastT;
        if (dt >= 0.4) {
          const r = (e.done - f.lastDone) / dt;
          f.rate = f.rate ? 0.6 * f.rate + 0.4 * r : r;
          f.lastT = e.t; f.lastDone = e.done;
        }
        f.total = e.total;
        if (e.total) { f.bar.max = e.total; f.bar.value = e.done; } else f.bar.removeAttribute("value");
        f.meta.querySelector(".bytes").textContent = e.total ? `${human(e.done)} / ${human(e.total)}` : human(e.done);
        f.meta.querySelector(".rate").textContent = e.state === "end" ? "" : `${human(Math.max(0, Math.round(f.rate)))}/s`;
        f.meta.querySelector(".host").textContent = e.host ? fmt(S.from, { host: e.host }) : "";
      },
    };
  }
  async function runInstall(event) {
    event.preventDefault();
    const button = $("install-run"), out = $("install-out");
    const mirror = document.querySelector('input[name="mirror"]:checked');
    const ui = document.querySelector('input[name="ui"]:checked');
    busy(button, true);
    try {
      const job = await startJob("/api/install", {
        dir: folder(), ui: $("manifest").value.trim() ? null : ui && ui.value, mirror: mirror && mirror.value,
        proxy: $("proxy").value, manifest: $("manifest").value, python: $("install-python").value,
        skip_models: $("skip-models").checked, skip_smoke: $("skip-smoke").checked, yes: $("yes").checked,
      }, out, S.installing);
      if (!job) return;
      const progress = installView();
      out.replaceChildren(el("p", { class: "spinner", role: "status", text: S.installing }), progress.view);
      $("install-form").hidden = true;  // the progress takes the form's place while it runs
      const result = await follow(job, progress);
      out.firstChild.replaceWith(summaryBanner(result));
      const text = terminalText(result);
      if (text) out.append(text);
    } finally {
      busy(button, false);
      $("install-form").hidden = false;
      out.scrollIntoView({ block: "start" });
    }
  }

  // verify
  async function runVerify(event) {
    event.preventDefault();
    const button = $("verify-run"), out = $("verify-out");
    busy(button, true);
    try {
      const job = await startJob("/api/verify", { dir: folder(), smoke_only: $("smoke-only").checked, python: $("verify-python").value }, out, S.verifying);
      if (!job) return;
      const result = await follow(job, {});
      const files = result.files || [];
      const parts = [summaryBanner(result)];
      if (result.data && result.data.items) parts.push(itemsTable(result.data.items));
      parts.push(el("h3", { text: S.smoke_image }));
      parts.push(files.includes("smoke.png")
        ? el("p", { class: "smoke" }, el("img", { src: withToken(`/api/jobs/${job}/files/smoke.png`), alt: S.smoke_image_alt, width: 256, height: 256 }))
        : el("p", { text: S.no_image }));
      if (files.includes("report.html")) {
        parts.push(el("p", {}, el("a", { href: withToken(`/api/jobs/${job}/files/report.html`), target: "_blank", rel: "noopener noreferrer", text: S.open_report })));
      }
      parts.push(terminalText(result));
      out.replaceChildren(...parts.filter(Boolean));
      out.scrollIntoView({ block: "start" });
    } finally { busy(button, false); }
  }

  // doctor
  async function loadLogs() {
    const list = await api("/api/logs?dir=" + encodeURIComponent(folder()));
    const pick = $("log-pick"), was = pick.value;
    pick.replaceChildren(el("option", { value: "", text: S.no_log }),
      ...list.map((log) => el("option", { value: log.name, text: `${log.name} (${human(log.size)})` })));
    if (list.some((log) => log.name === was)) pick.value = was;
  }
  function findingNode(f) {
    const steps = (f.fix && f.fix.steps) || [];
    return el("article", { class: "finding " + f.severity, "data-finding": f.id },
      el("h4", {}, statusBadge(f.severity === "error" ? "fail" : "warn", f.severity), " ", f.title),
      f.explanation ? el("p", {}, el("strong", { text: S.why + ": " }), ...rich(f.explanation)) : null,
      steps.length ? el("ol", {}, steps.map((s) => el("li", {}, ...rich(s)))) : null,
      f.autofix ? el("p", {}, ...rich(fmt(S.can_fix, { text: f.autofix.text }))) : null,
      (f.evidence || []).length ? el("details", {}, el("summary", { text: S.evidence }), el("pre", { class: "evidence", text: f.evidence.join("\n") })) : null);
  }
  async function runDoctor(extra, button) {
    const out = $("doctor-out");
    busy(button, true);
    try {
      const job = await startJob("/api/doctor", {
        dir: folder(), text: $("log-text").value, log: $("log-pick").value, with_folder: $("with-folder").checked, ...extra,
      }, out, S.diagnosing);
      if (!job) return;
      const result = await follow(job, {});
      const parts = [summaryBanner(result)];
      const data = result.data || {};
      if (data.fixes && data.fixes.length) {
        const labels = { applied: S.fix_applied, failed: S.step_failed, declined: S.fix_declined, done: S.step_done_before, skip: S.step_skipped };
        parts.push(el("h3", { text: S.fixes_applied }), el("ul", { class: "fixes" }, data.fixes.map((fx) => {
          const state = fx.result || fx.status;
          return el("li", { "data-fix": state }, statusBadge(state === "applied" || state === "done" ? "ok" : state === "failed" ? "fail" : "warn", labels[state] || state),
            " ", ...rich(fx.action), fx.detail ? " — " + fx.detail : "", fx.reason ? " — " + fx.reason : "");
        })));
      }
      if (data.findings) {
        parts.push(el("h3", { text: S.findings }));
        parts.push(data.findings.length ? el("div", {}, data.findings.map(findingNode)) : el("p", { text: S.no_findings }));
      }
      if ((result.files || []).includes("sdsetup-support.zip")) {
        const removed = data.bundle && data.bundle.removed ? Object.values(data.bundle.removed).reduce((a, b) => a + b, 0) : 0;
        parts.push(el("p", {}, el("a", { href: withToken(`/api/jobs/${job}/files/sdsetup-support.zip`), download: "sdsetup-support.zip", class: "download", text: S.download_zip }),
          " ", el("span", { class: "help", text: fmt(S.zip_note, { count: removed }) })));
      }
      parts.push(terminalText(result));
      out.replaceChildren(...parts.filter(Boolean));
      out.scrollIntoView({ block: "start" });
    } finally { busy(button, false); }
  }

  // models and extensions: the commands' own listing, as the terminal shows it
  function listing(doc) {
    if (!doc.ok && doc.error) return errorBanner(doc);
    return el("pre", { class: "listing", text: doc.text || "" });
  }
  async function listModels() {
    $("models-out").replaceChildren(listing(await api("/api/models", { dir: folder() })));
  }
  async function listExt() {
    $("ext-out").replaceChildren(listing(await api("/api/ext", { dir: folder() })));
  }
  async function runListJob(path, body, out, button, relist) {
    busy(button, true);
    try {
      const job = await startJob(path, body, out, S.working);
      if (!job) return;
      const progress = installView();
      out.replaceChildren(el("p", { class: "spinner", role: "status", text: S.working }), progress.view);
      const result = await follow(job, progress);
      out.replaceChildren(summaryBanner(result), terminalText(result) || "");
      const after = await api(relist, { dir: folder() });
      out.append(listing(after));
    } finally { busy(button, false); }
  }

  // the web UI
  function renderWebui(doc) {
    const out = $("webui-out");
    if (doc.error) { out.replaceChildren(errorBanner(doc)); return; }
    const line = doc.running ? fmt(S.webui_running, { pid: doc.pid })
      : doc.exit_code !== null && doc.exit_code !== undefined ? fmt(S.webui_exited, { code: doc.exit_code }) : S.webui_stopped;
    out.replaceChildren(el("p", { class: "banner " + (doc.running ? "ok" : "info"), role: "status", text: line }),
      doc.url ? el("p", {}, el("a", { href: doc.url, target: "_blank", rel: "noopener noreferrer", class: "webui-link", text: fmt(S.open_webui, { url: doc.url }) })) : "",
      doc.console ? el("h3", { text: S.console }) : "", doc.console ? el("pre", { class: "console", text: doc.console }) : "");
  }
  async function webuiStatus() { renderWebui(await api("/api/webui")); }

  // ---------------------------------------------------------------- start
  function applyStrings() {
    document.querySelectorAll("[data-s]").forEach((node) => {
      if (S[node.dataset.s]) node.textContent = S[node.dataset.s];
    });
    document.title = S.title;
  }
  async function init() {
    const strings = await api("/api/strings");
    S = strings.strings;
    document.documentElement.lang = strings.lang;
    $("lang").value = strings.lang;
    $("version").textContent = "sdsetup " + strings.version;
    applyStrings();
    info = await api("/api/info");
    $("folder").value = sessionStorage.getItem("sdsetup-folder") || info.dir;
    buildInstallForm();
    $("folder").addEventListener("change", () => { sessionStorage.setItem("sdsetup-folder", folder()); if (shown === "doctor") loadLogs(); });
    $("lang").addEventListener("change", async () => {
      await api("/api/lang", { lang: $("lang").value });
      sessionStorage.setItem("sdsetup-folder", folder());
      location.reload();
    });
    $("check-run").addEventListener("click", runCheck);
    $("install-form").addEventListener("submit", runInstall);
    $("verify-form").addEventListener("submit", runVerify);
    $("doctor-form").addEventListener("submit", (e) => { e.preventDefault(); runDoctor({}, $("doctor-run")); });
    $("doctor-fix").addEventListener("click", () => runDoctor({ fix: true }, $("doctor-fix")));
    $("doctor-zip").addEventListener("click", () => runDoctor({ bundle: true }, $("doctor-zip")));
    $("webui-start").addEventListener("click", async () => { renderWebui(await api("/api/webui/start", { dir: folder() })); });
    $("webui-stop").addEventListener("click", async () => { renderWebui(await api("/api/webui/stop", {})); });
    $("webui-refresh").addEventListener("click", webuiStatus);
    $("model-form").addEventListener("submit", (e) => {
      e.preventDefault();
      runListJob("/api/models/add", { dir: folder(), source: $("model-source").value, type: $("model-type").value,
        name: $("model-name").value, sha256: $("model-sha256").value }, $("models-out"), $("model-add"), "/api/models");
    });
    $("models-refresh").addEventListener("click", listModels);
    $("ext-form").addEventListener("submit", (e) => {
      e.preventDefault();
      runListJob("/api/ext/add", { dir: folder(), url: $("ext-url").value, commit: $("ext-commit").value }, $("ext-out"), $("ext-add"), "/api/ext");
    });
    $("ext-refresh").addEventListener("click", listExt);
    $("ext-remove").addEventListener("click", async () => {
      const doc = await api("/api/ext/remove", { dir: folder(), name: $("ext-name").value });
      $("ext-out").replaceChildren(summaryBanner(doc), listing(await api("/api/ext", { dir: folder() })));
    });
    window.addEventListener("hashchange", () => showPage(location.hash.slice(1), true));
    showPage(location.hash.slice(1), false);
    document.body.dataset.ready = "1";
  }
  init();
})();
