// unkai's dashboard: live updates from the event feed (Server-Sent Events at
// /_unkai/ui/events) and the buttons' requests. No framework, no build step.
"use strict";
(function () {
  const live = JSON.parse(document.body.dataset.live || "{}");
  const status = document.getElementById("live-status");
  const activity = document.getElementById("activity");
  const MAX_ACTIVITY = 60;

  function failed(ev) {
    if (ev.kind === "lambda.invoke") return ev.status === "error" || ev.status === "throttled";
    if (ev.kind === "apigateway.request") return Number(ev.status || 0) >= 500;
    return ["lambda.async_retry", "lambda.async_failed", "sqs.dlq", "delivery.failed"].includes(ev.kind) ||
      ev.kind.endsWith(".error") || ev.kind.endsWith(".failed");
  }

  function describe(ev) {
    if (ev.kind === "lambda.invoke") return `${ev.function} ${ev.status}` + (ev.duration_ms !== undefined ? ` ${ev.duration_ms} ms` : "") + (ev.trigger ? ` ← ${ev.trigger}` : "");
    if (ev.kind === "apigateway.request") return `${ev.method} ${ev.path} → ${ev.status}`;
    if (ev.kind === "sqs.dlq") return `${ev.queue} → dead letters ${ev.dlq}`;
    const rest = Object.entries(ev).filter(([k]) => !["id", "time", "kind", "stack", "trace"].includes(k));
    return rest.map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(" ").slice(0, 160);
  }

  function addActivity(ev) {
    if (!activity) return;
    const li = document.createElement("li");
    if (failed(ev)) li.className = "bad";
    const time = new Date(ev.time * 1000).toLocaleTimeString();
    const kind = document.createElement("strong");
    kind.textContent = ev.kind;
    li.append(`${time} `, kind, ` ${describe(ev)}`);
    if (ev.trace) {
      const a = document.createElement("a");
      a.href = `/_unkai/ui/trace/${encodeURIComponent(ev.trace)}`;
      a.textContent = "trace";
      li.append(" ", a);
    }
    activity.prepend(li);
    while (activity.children.length > MAX_ACTIVITY) activity.lastChild.remove();
  }

  // -- the flow graph: light up the edge an event travelled ------------------------------
  function nodesNamed(name) {
    if (!name) return [];
    return Array.from(document.querySelectorAll("#flow .node")).filter(
      (n) => (n.dataset.names || "").split(" ").includes(String(name)));
  }
  function flash(el, cls) {
    if (!el) return;
    el.classList.remove("active", "failed");
    void el.getBBox?.();
    el.classList.add(cls);
    const ms = cls === "failed" ? 8000 : 1500;
    clearTimeout(el._unkaiTimer);
    el._unkaiTimer = setTimeout(() => el.classList.remove(cls), ms);
    el.dataset.lit = String((Number(el.dataset.lit || 0)) + 1);
  }
  function edgesInto(id) {
    return Array.from(document.querySelectorAll("#flow .edge")).filter((p) => p.dataset.to === id);
  }
  function edgesFrom(id) {
    return Array.from(document.querySelectorAll("#flow .edge")).filter((p) => p.dataset.from === id);
  }
  function onFlow(ev) {
    const cls = failed(ev) ? "failed" : "active";
    if (ev.kind === "lambda.invoke") {
      for (const node of nodesNamed(ev.function)) {
        flash(node, cls);
        const trigger = String(ev.trigger || "");
        const word = trigger.split(" ").slice(-1)[0];
        let edges = edgesInto(node.dataset.id);
        const named = edges.filter((p) => {
          const src = document.querySelector(`#flow .node[data-id="${CSS.escape(p.dataset.from)}"]`);
          if (!src) return false;
          const names = (src.dataset.names || "").split(" ");
          if (/^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|ANY|\$)/.test(trigger)) return src.classList.contains("api");
          return names.includes(word);
        });
        for (const p of (named.length ? named : edges.length === 1 ? edges : [])) flash(p, cls);
        if (ev.status === "ok") for (const p of edgesFrom(node.dataset.id)) if (p.classList.contains("writes")) flash(p, "active");
      }
    } else if (ev.kind === "apigateway.request") {
      for (const node of nodesNamed(ev.api_id)) { flash(node, cls); }
    } else if (ev.kind === "sqs.dlq") {
      for (const node of nodesNamed(ev.queue)) {
        for (const p of edgesFrom(node.dataset.id)) if (p.classList.contains("dlq")) flash(p, "failed");
      }
    } else if (ev.kind === "delivery.failed") {
      for (const node of nodesNamed(ev.target)) flash(node, "failed");
    }
  }

  // -- views that refresh a number or a list from events --------------------------------
  let errors = 0;
  function onEvents(events) {
    for (const ev of events) {
      addActivity(ev);
      if (document.getElementById("flow")) onFlow(ev);
      if (failed(ev)) {
        const count = document.getElementById("error-count");
        if (count) { count.textContent = String(Number(count.textContent || 0) + 1); count.classList.add("bad"); }
        errors += 1;
      }
    }
  }

  function connect() {
    if (!window.EventSource) { status.textContent = "no live updates in this browser"; return; }
    const source = new EventSource(`/_unkai/ui/events?after=${Math.max(0, (live.last || 0) - 20)}`);
    source.addEventListener("hello", () => { status.textContent = "live"; status.classList.remove("bad"); });
    source.onmessage = (msg) => {
      const data = JSON.parse(msg.data);
      if (data.missed) status.textContent = `live (${data.missed} events skipped in a burst)`;
      onEvents(data.events || []);
    };
    source.onerror = () => { status.textContent = "reconnecting…"; status.classList.add("bad"); };
  }

  // -- function logs: long-poll unkai's log endpoint --------------------------------------
  async function followLog(list) {
    let after = 0;
    const group = list.dataset.group;
    const region = live.region ? `&region=${encodeURIComponent(live.region)}` : "";
    for (;;) {
      try {
        const r = await fetch(`/_unkai/logs?group=${encodeURIComponent(group)}&after=${after}&wait=20${region}`);
        if (!r.ok) { await new Promise((ok) => setTimeout(ok, 5000)); continue; }
        const page = await r.json();
        if (after) for (const ev of page.events) list.append(logLine(ev));
        after = page.next || after;
        if (!page.events.length && !after) await new Promise((ok) => setTimeout(ok, 3000));
      } catch (err) { await new Promise((ok) => setTimeout(ok, 5000)); }
    }
  }
  function logLine(ev) {
    const li = document.createElement("li");
    const msg = String(ev.message || "").replace(/\n$/, "");
    if (/ERROR|Traceback/.test(msg)) li.className = "error"; else if (/WARN/.test(msg)) li.className = "warn";
    const time = document.createElement("time");
    time.textContent = new Date(ev.timestamp).toLocaleTimeString();
    li.append(time, " ");
    if (msg.includes("\n")) {
      const d = document.createElement("details"); const s = document.createElement("summary");
      const [first, ...rest] = msg.split("\n"); s.textContent = first;
      const pre = document.createElement("pre"); pre.textContent = rest.join("\n");
      d.append(s, pre); li.append(d);
    } else li.append(msg);
    return li;
  }

  // -- forms -----------------------------------------------------------------------------
  function say(form, text, bad) {
    const out = form.parentElement.querySelector("#action-result, #invoke-result, .result") ||
      document.getElementById("action-result");
    if (out) { out.textContent = text; out.classList.toggle("bad", !!bad); }
  }
  async function post(url, body, headers) {
    const r = await fetch(url, { method: "POST", body, headers: headers || { "content-type": "application/json" } });
    let data = {};
    try { data = await r.json(); } catch (err) { data = { message: r.statusText }; }
    return [r.ok, data];
  }

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    const action = form.dataset.action;
    if (!action) return;
    event.preventDefault();
    const fields = Object.fromEntries(new FormData(form).entries());
    if (action === "advance") {
      const [ok, data] = await post(`/_unkai/clock/advance?seconds=${encodeURIComponent(fields.seconds)}`, "");
      if (ok) {
        document.getElementById("clock-now").textContent = data.now;
        document.getElementById("clock-offset").textContent = String(data.offset);
      } else alert(data.message);
    } else if (action === "invoke") {
      say(form, "invoking…");
      const [ok, data] = await post(form.dataset.url, fields.event);
      say(form, ok ? `${data.error ? "Function error" : "Status " + data.status} (request ${data.request_id})\n${data.payload}\n\n${data.log}` : data.message, !ok || data.error);
    } else if (action === "post") {
      const [ok, data] = await post(form.dataset.url, JSON.stringify(fields));
      say(form, data.message, !ok);
      if (ok) setTimeout(() => location.reload(), 600);
    } else if (action === "upload") {
      const files = form.querySelector("input[type=file]").files;
      await upload(form, files);
    } else if (action === "request") {
      const url = form.dataset.base + (fields.path.startsWith("/") ? fields.path : "/" + fields.path);
      const out = form.nextElementSibling;
      try {
        const r = await fetch(url, { method: fields.method, body: ["GET", "HEAD"].includes(fields.method) ? undefined : fields.body });
        out.textContent = `${r.status} ${r.statusText}\n${await r.text()}`;
      } catch (err) { out.textContent = String(err); }
    }
  });

  async function upload(form, files) {
    for (const file of files) {
      const key = (form.dataset.prefix || "") + file.name;
      const [ok, data] = await post(`${form.dataset.url}?key=${encodeURIComponent(key)}`, file,
        { "content-type": file.type || "application/octet-stream" });
      say(form, data.message, !ok);
      if (!ok) return;
    }
    setTimeout(() => location.reload(), 600);
  }

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-edit], button[data-delete]");
    if (!button) return;
    if (button.dataset.edit) {
      const area = document.getElementById("item");
      area.value = JSON.stringify(JSON.parse(button.dataset.edit), null, 2);
      area.focus();
    } else if (confirm("Delete this item?")) {
      const [ok, data] = await post(button.dataset.url, JSON.stringify({ key: JSON.parse(button.dataset.delete) }));
      if (ok) location.reload(); else alert(data.message);
    }
  });

  // saved test events: kept in this browser, per function (as the console keeps them per function)
  const savedKey = `unkai.events.${live.function || ""}`;
  function savedEvents() { try { return JSON.parse(localStorage.getItem(savedKey) || "{}"); } catch (err) { return {}; } }
  function listSaved() {
    const select = document.getElementById("sample");
    if (!select) return;
    for (const name of Object.keys(savedEvents())) {
      if (select.querySelector(`option[value="saved/${CSS.escape(name)}"]`)) continue;
      const option = document.createElement("option");
      option.value = `saved/${name}`;
      option.textContent = `saved: ${name}`;
      select.append(option);
    }
  }
  const saveButton = document.getElementById("save-event");
  if (saveButton) saveButton.addEventListener("click", () => {
    const name = prompt("Name of this test event");
    if (!name) return;
    const saved = savedEvents();
    saved[name] = document.getElementById("event").value;
    localStorage.setItem(savedKey, JSON.stringify(saved));
    listSaved();
  });
  listSaved();

  document.addEventListener("change", (event) => {
    if (event.target.id !== "sample") return;
    if (event.target.value.startsWith("saved/")) {
      document.getElementById("event").value = savedEvents()[event.target.value.slice(6)] || "{}";
      return;
    }
    const samples = JSON.parse(document.getElementById("samples").dataset.samples || "{}");
    const chosen = samples[event.target.value];
    document.getElementById("event").value = chosen ? JSON.stringify(chosen, null, 2) : "{}";
  });

  const zone = document.querySelector(".dropzone");
  if (zone) {
    zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); upload(zone, e.dataTransfer.files); });
  }

  const log = document.getElementById("log");
  if (log && log.dataset.group) followLog(log);
  connect();
})();
