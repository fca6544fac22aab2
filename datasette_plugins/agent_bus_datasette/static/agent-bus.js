/* agent-bus thread: follow new messages live (long-poll), keep relative times fresh.
   Message HTML comes from the server, already sanitised; nothing here builds markup
   from message text. */
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

  function start() {
    refreshTimes();
    setInterval(refreshTimes, 30000);
    var thread = document.getElementById("ab-thread");
    var hasTarget = window.location.hash || document.querySelector(".ab-target");
    if (thread && thread.getAttribute("data-poll-url")) {
      if (!hasTarget) window.scrollTo(0, document.body.scrollHeight);
      follow(thread);
    }
    var target = document.querySelector(".ab-target");
    if (target && !window.location.hash) target.scrollIntoView({ block: "center" });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
