/* agent-bus pages: follow a thread live (long-poll) and the topics list (refresh), keep
   relative times fresh, and enhance the write forms (preview, send without reload,
   Reply quoting, delete confirmation), copy buttons, range selection, dark mode and
   keyboard shortcuts. Every form works without this file. Message HTML comes from the
   server, already sanitised; nothing here builds markup from message text. */
(function () {
  "use strict";

  // Same rules as agent_bus/timefmt.py (ago), which renders the first text.
  function ago(ts) {
    var d = Math.max(0, Date.now() / 1000 - ts);
    if (d < 45) return "just now";
    if (d < 3600) return (Math.floor(d / 60) || 1) + "m ago";
    if (d < 86400) return Math.floor(d / 3600) + "h ago";
    if (d < 30 * 86400) return Math.floor(d / 86400) + "d ago";
    var t = new Date(ts * 1000);
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return t.getFullYear() + "-" + pad(t.getMonth() + 1) + "-" + pad(t.getDate());
  }

  function refreshTimes() {
    document.querySelectorAll("time[data-ts]").forEach(function (el) {
      el.textContent = ago(parseFloat(el.getAttribute("data-ts")));
    });
  }

  function nearBottom() {
    return window.innerHeight + window.scrollY >= document.body.scrollHeight - 200;
  }

  function follow(thread) {
    var url = thread.getAttribute("data-poll-url");
    var last = parseInt(thread.getAttribute("data-last-seq") || "0", 10);
    var live = document.getElementById("ab-live");
    var below = document.getElementById("ab-new-below");
    var failures = 0;

    function show(state, text) {
      if (!live) return;
      live.classList.remove("ab-on", "ab-err");
      if (state) live.classList.add(state);
      live.textContent = text;
    }

    function setText(id, value) {
      var el = document.getElementById(id);
      if (el) el.textContent = value;
    }

    function apply(data) {
      if (data.html) {
        var stick = nearBottom();
        var empty = document.getElementById("ab-no-messages");
        if (empty) empty.remove();
        var tpl = document.createElement("template");
        tpl.innerHTML = data.html;
        tpl.content.querySelectorAll(".ab-msg").forEach(function (el) {
          var seq = el.getAttribute("data-seq");
          if (document.getElementById("m-" + seq)) return;
          el.classList.add("ab-new");
          thread.appendChild(el);
        });
        if (stick) {
          window.scrollTo({ top: document.body.scrollHeight, behavior: "smooth" });
        } else if (below) {
          below.hidden = false;
        }
      }
      last = data.last_seq;
      thread.setAttribute("data-last-seq", String(last));
      markSeen(thread.getAttribute("data-topic-id"), last);
      setText("ab-count", data.message_count + " messages");
      setText("ab-stat-count", data.message_count);
      setText("ab-side-count", data.message_count);
      setText("ab-stat-last", last);
      var presence = document.getElementById("ab-presence");
      if (presence && typeof data.presence_html === "string") presence.innerHTML = data.presence_html;
    }

    function loop() {
      var sep = url.indexOf("?") === -1 ? "?" : "&";
      fetch(url + sep + "after=" + last + "&wait=20", {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      })
        .then(function (r) {
          // The access token was revoked or expired: reloading leads to the login page.
          if (r.status === 401) { location.reload(); return new Promise(function () {}); }
          if (!r.ok) throw new Error("HTTP " + r.status);
          return r.json();
        })
        .then(function (data) {
          failures = 0;
          apply(data);
          show("ab-on", data.status === "closed" ? "Live · topic closed" : "Live");
          setTimeout(loop, data.has_more ? 0 : 50);
        })
        .catch(function () {
          failures += 1;
          show("ab-err", "Reconnecting…");
          setTimeout(loop, Math.min(5000, 500 * failures));
        });
    }

    if (below) {
      below.querySelector("a").addEventListener("click", function (ev) {
        ev.preventDefault();
        below.hidden = true;
        window.scrollTo({ top: document.body.scrollHeight, behavior: "smooth" });
      });
      window.addEventListener("scroll", function () {
        if (nearBottom()) below.hidden = true;
      });
    }
    show("ab-on", "Live");
    loop();
  }

  // --- what this browser has seen (marks on the topics list) ---------------------------
  // "seen": the last seq this browser showed in each thread; "overview": each topic's last
  // seq when the topics list was last opened. A row is new past both.
  var SCOPE = location.pathname.split("/").slice(0, 4).join("/");

  function load(kind) {
    try { return JSON.parse(window.localStorage.getItem("agent-bus:" + kind + ":" + SCOPE) || "null"); } catch (e) { return null; }
  }

  function save(kind, map) {
    try { window.localStorage.setItem("agent-bus:" + kind + ":" + SCOPE, JSON.stringify(map)); } catch (e) { /* private mode */ }
  }

  function markSeen(topicId, seq) {
    if (!topicId) return;
    var map = load("seen") || {};
    if ((map[topicId] || 0) < seq) map[topicId] = seq;
    save("seen", map);
  }

  function currentSeqs(table) {
    var out = {};
    table.querySelectorAll("tbody tr[data-topic-id]").forEach(function (row) {
      out[row.getAttribute("data-topic-id")] = parseInt(row.getAttribute("data-last-seq") || "0", 10);
    });
    return out;
  }

  function markRows(table, before) {
    var seen = load("seen") || {};
    table.querySelectorAll("tbody tr[data-topic-id]").forEach(function (row) {
      var id = row.getAttribute("data-topic-id");
      var seq = parseInt(row.getAttribute("data-last-seq") || "0", 10);
      var mark = row.querySelector(".ab-new-mark");
      if (!mark) return;
      var known = id in before || id in seen;
      var had = Math.max(before[id] || 0, seen[id] || 0);
      if (!known) mark.textContent = "new topic";
      else if (seq > had) mark.textContent = (seq - had) + " new";
      else return;
      mark.hidden = false;
      row.classList.add("ab-row-new");
    });
  }

  function followOverview(table) {
    var before = load("overview") || currentSeqs(table);  // first visit: nothing is new
    save("overview", currentSeqs(table));  // the next visit compares with this look
    markRows(table, before);
    var busy = false;
    function refresh() {
      if (busy || document.hidden) return;
      busy = true;
      fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (r) {
          if (r.redirected) { location.reload(); throw new Error("signed out"); }  // to login
          if (!r.ok) throw new Error("HTTP " + r.status);
          return r.text();
        })
        .then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.querySelector("#ab-topics tbody");
          var old = table.querySelector("tbody");
          if (fresh && old) old.replaceWith(document.importNode(fresh, true));
          markRows(table, before);
          var summary = doc.getElementById("ab-overview-summary");
          var mine = document.getElementById("ab-overview-summary");
          if (summary && mine) mine.innerHTML = summary.innerHTML;
          table.setAttribute("data-refreshed", String(Date.now()));
        })
        .catch(function () { /* next round */ })
        .then(function () { busy = false; });
    }
    setInterval(refresh, 3000);
    document.addEventListener("visibilitychange", refresh);
  }

  // --- writing: preview, send without reload, Reply ---------------------------------------
  function formBody(form, intent) {
    var data = new URLSearchParams(new FormData(form));
    data.set("intent", intent);
    return data;
  }

  function postJSON(url, body) {
    return fetch(url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    }).then(function (r) {
      return r.json().then(function (data) {
        if (!r.ok || data.error) throw new Error((data.error && data.error.message) || "HTTP " + r.status);
        return data;
      });
    });
  }

  function enhanceCompose(form) {
    var url = form.getAttribute("action") + ".json";
    var error = document.getElementById("ab-compose-error");
    var preview = document.getElementById("ab-preview");
    var previewBody = document.getElementById("ab-preview-body");
    var text = document.getElementById("ab-body-input");
    var send = document.getElementById("ab-send");
    function fail(message) { error.textContent = message; error.hidden = false; }
    function ok() { error.hidden = true; error.textContent = ""; }
    function submit(intent) {
      send.disabled = true;
      postJSON(url, formBody(form, intent))
        .then(function (data) {
          ok();
          if (intent === "preview") {
            previewBody.innerHTML = data.html;  // sanitised server-side, as the thread is
            preview.hidden = false;
            return;
          }
          text.value = "";
          preview.hidden = true;
          clearReply();
          var seq = data.sent && data.sent[0] && data.sent[0].message.seq;
          form.setAttribute("data-sent-seq", String(seq || ""));
          // an older window is not live: go to the new message instead
          var thread = document.getElementById("ab-thread");
          if (thread && !thread.getAttribute("data-poll-url") && data.url) location.href = data.url;
        })
        .catch(function (e) { fail(e.message); })
        .then(function () { send.disabled = false; });
    }
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var intent = ev.submitter && ev.submitter.value === "preview" ? "preview" : "send";
      submit(intent);
    });
    text.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); submit("send"); }
    });
    var cancel = document.getElementById("ab-reply-cancel");
    if (cancel) cancel.addEventListener("click", function (ev) { ev.preventDefault(); clearReply(); });
  }

  function clearReply() {
    var to = document.getElementById("ab-reply-to");
    var label = document.getElementById("ab-reply-label-field");
    var note = document.getElementById("ab-replying");
    if (to) to.value = "";
    if (label) label.value = "";
    if (note) note.hidden = true;
  }

  // Same rule as quote_block in views/messages.py (the Reply link without JavaScript).
  function quoteOf(markdown) {
    var out = [];
    var used = 0;
    var lines = markdown.trim().split("\n");
    for (var i = 0; i < lines.length; i++) {
      var line = lines[i];
      if (used + line.length > 400) {
        out.push(line.slice(0, Math.max(0, 400 - used)).replace(/\s+$/, "") + "…");
        break;
      }
      out.push(line);
      used += line.length;
    }
    return out.map(function (l) { return ("> " + l).replace(/\s+$/, ""); }).join("\n") + "\n\n";
  }

  function reply(article) {
    var form = document.getElementById("ab-compose-form");
    if (!form || !article) return;
    var id = article.getAttribute("data-message-id");
    var label = "#" + article.getAttribute("data-seq") + " " + article.getAttribute("data-sender");
    document.getElementById("ab-reply-to").value = id;
    document.getElementById("ab-reply-label-field").value = label;
    document.getElementById("ab-replying-label").textContent = label;
    document.getElementById("ab-replying").hidden = false;
    var text = document.getElementById("ab-body-input");
    var source = article.querySelector(".ab-source");
    var done = function () {
      form.scrollIntoView({ block: "center" });
      text.focus();
      text.setSelectionRange(text.value.length, text.value.length);
    };
    if (!source) return done();
    fetch(source.getAttribute("href"), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : ""; })
      .then(function (md) { if (md && !text.value.trim()) text.value = quoteOf(md); done(); })
      .catch(done);
  }

  // --- copy, select a range, confirm delete ------------------------------------------------
  function copyText(button, text) {
    var done = function (label) {
      var old = button.textContent;
      button.textContent = label;
      setTimeout(function () { button.textContent = old; }, 1500);
    };
    if (!navigator.clipboard) return done("Copy failed");
    navigator.clipboard.writeText(text).then(function () { done("Copied"); }, function () { done("Copy failed"); });
  }

  function onThreadClick(ev) {
    var t = ev.target.closest ? ev.target.closest(".ab-reply-btn, .ab-copy-link, .ab-copy-md") : null;
    if (!t) return;
    var article = t.closest(".ab-msg");
    if (t.classList.contains("ab-reply-btn") && document.getElementById("ab-compose-form")) {
      ev.preventDefault();
      reply(article);
    } else if (t.classList.contains("ab-copy-link")) {
      copyText(t, new URL(t.getAttribute("data-href"), location.href).href);
    } else if (t.classList.contains("ab-copy-md")) {
      fetch(t.getAttribute("data-href"), { credentials: "same-origin" })
        .then(function (r) { return r.text(); })
        .then(function (md) { copyText(t, md); });
    }
  }

  function updateRange() {
    var seqs = [];
    document.querySelectorAll(".ab-select-box:checked").forEach(function (b) { seqs.push(parseInt(b.value, 10)); });
    var from = document.getElementById("ab-range-from");
    var to = document.getElementById("ab-range-to");
    var note = document.getElementById("ab-range-note");
    if (!from || !to) return;
    if (seqs.length) {
      from.value = String(Math.min.apply(null, seqs));
      to.value = String(Math.max.apply(null, seqs));
    }
    if (note) note.textContent = seqs.length ? seqs.length + " selected → #" + from.value + "–#" + to.value : "";
  }

  function revealEnhancements() {
    document.querySelectorAll(".ab-copy-link, .ab-copy-md, .ab-select, #ab-theme, #ab-help-open").forEach(function (el) { el.hidden = false; });
  }

  function guardDelete() {
    var input = document.getElementById("ab-confirm-name");
    var button = document.getElementById("ab-delete-btn");
    if (!input || !button) return;
    var check = function () { button.disabled = input.value !== input.getAttribute("data-expected"); };
    input.addEventListener("input", check);
    check();
  }

  // --- dark mode and keyboard ---------------------------------------------------------------
  function setupTheme() {
    var button = document.getElementById("ab-theme");
    if (!button) return;
    var sync = function () {
      var dark = document.documentElement.classList.contains("ab-dark");
      button.setAttribute("aria-pressed", dark ? "true" : "false");
      button.textContent = dark ? "Light mode" : "Dark mode";
    };
    button.addEventListener("click", function () {
      var dark = !document.documentElement.classList.contains("ab-dark");
      try { window.localStorage.setItem("agent-bus:theme", dark ? "dark" : "light"); } catch (e) { /* ignore */ }
      if (window.agentBusTheme) window.agentBusTheme.apply();
      sync();
    });
    sync();
  }

  function items() {
    var msgs = document.querySelectorAll("#ab-thread .ab-msg");
    if (msgs.length) return Array.prototype.slice.call(msgs);
    return Array.prototype.slice.call(document.querySelectorAll("#ab-topics tbody tr"));
  }

  function move(step) {
    var list = items();
    if (!list.length) return;
    var at = list.indexOf(document.querySelector(".ab-selected"));
    if (at === -1) at = step > 0 ? -1 : list.length;
    var next = list[Math.max(0, Math.min(list.length - 1, at + step))];
    list.forEach(function (el) { el.classList.remove("ab-selected"); });
    next.classList.add("ab-selected");
    var link = next.tagName === "TR" ? next.querySelector("a.ab-topic-name") : null;
    (link || next).focus();
    next.scrollIntoView({ block: "nearest" });
  }

  function onKey(ev) {
    var help = document.getElementById("ab-help");
    var el = ev.target;
    var typing = el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
    if (ev.key === "Escape" && typing) { el.blur(); return; }
    if (typing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (help && help.open) return;
    if (ev.key === "j") { ev.preventDefault(); move(1); }
    else if (ev.key === "k") { ev.preventDefault(); move(-1); }
    else if (ev.key === "r") {
      var list = items();
      var chosen = document.querySelector(".ab-msg.ab-selected") || (list.length && list[0].classList.contains("ab-msg") ? list[list.length - 1] : null);
      if (chosen && document.getElementById("ab-compose-form")) { ev.preventDefault(); reply(chosen); }
    } else if (ev.key === "/") {
      var q = document.getElementById("ab-q");
      if (q) { ev.preventDefault(); q.focus(); q.select(); }
    } else if (ev.key === "?") {
      if (help && help.showModal) { ev.preventDefault(); help.showModal(); }
    }
  }

  function start() {
    revealEnhancements();
    setupTheme();
    guardDelete();
    document.addEventListener("keydown", onKey);
    var helpOpen = document.getElementById("ab-help-open");
    var help = document.getElementById("ab-help");
    if (helpOpen && help) helpOpen.addEventListener("click", function () { help.showModal(); });
    refreshTimes();
    setInterval(refreshTimes, 30000);
    var thread = document.getElementById("ab-thread");
    var hasTarget = window.location.hash || document.querySelector(".ab-target");
    if (thread) {
      thread.addEventListener("click", onThreadClick);
      thread.addEventListener("change", function (ev) {
        if (ev.target.classList.contains("ab-select-box")) updateRange();
      });
      markSeen(thread.getAttribute("data-topic-id"), parseInt(thread.getAttribute("data-topic-last-seq") || "0", 10));
    }
    var compose = document.getElementById("ab-compose-form");
    if (compose) enhanceCompose(compose);
    if (thread && thread.getAttribute("data-poll-url")) {
      if (!hasTarget) window.scrollTo(0, document.body.scrollHeight);
      follow(thread);
    }
    var target = document.querySelector(".ab-target");
    if (target && !window.location.hash) target.scrollIntoView({ block: "center" });
    var table = document.getElementById("ab-topics");
    if (table) followOverview(table);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
