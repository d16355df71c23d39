// The console's only script: it polls the server-rendered state every few
// seconds and posts the buttons' actions, with the admin header the
// emulator requires of every admin action. No build step, no dependencies.
(function () {
  "use strict";
  var body = document.body;
  var base = body.dataset.base;
  var adminHeader = body.dataset.adminHeader;
  var nodesPath = body.dataset.nodesPath;
  var refresh = Number(body.dataset.refresh) || 2000;
  var state = document.getElementById("state");
  var notice = document.getElementById("notice");
  var inFlight = false;

  function say(text, isError) {
    notice.textContent = text;
    notice.className = isError ? "error" : "ok";
  }

  // poll replaces the state with a fresh rendering, one request at a time.
  // A hidden tab does not poll (it catches up when shown again).
  function poll() {
    if (inFlight || document.hidden) return Promise.resolve();
    inFlight = true;
    return fetch(base + "state", { cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then(function (html) { state.innerHTML = html; })
      .catch(function (e) { say("refresh failed: " + e.message, true); })
      .finally(function () { inFlight = false; });
  }

  function actionURL(d) {
    var q = new URLSearchParams({ account: d.account, region: d.region });
    switch (d.action) {
      case "kill":
      case "pause":
      case "resume":
        return nodesPath + "/" + encodeURIComponent(d.cluster) + "/" + d.action + "?" + q;
      case "failover":
        q.set("group", d.group);
        q.set("shard", d.shard);
        return base + "failover?" + q;
      case "snapshot":
        if (d.group) q.set("group", d.group); else q.set("cluster", d.cluster);
        return base + "snapshot?" + q;
    }
    return "";
  }

  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("button[data-action]");
    if (!b) return;
    var d = b.dataset;
    var url = actionURL(d);
    if (!url) return;
    var what = d.action + " " + (d.group ? d.group + (d.shard ? " shard " + d.shard : "") : d.cluster);
    b.disabled = true;
    var headers = {};
    headers[adminHeader] = "1";
    fetch(url, { method: "POST", headers: headers })
      .then(function (r) {
        return r.text().then(function (text) {
          var msg = "";
          try { msg = text ? JSON.parse(text) : {}; } catch (e) { msg = { error: text }; }
          if (!r.ok) throw new Error(msg.error || ("HTTP " + r.status));
          say(msg.message || (what + ": done"), false);
        });
      })
      .catch(function (e) { say(what + ": " + e.message, true); })
      .finally(function () { b.disabled = false; poll(); });
  });

  setInterval(poll, refresh);
  document.addEventListener("visibilitychange", poll);
})();
