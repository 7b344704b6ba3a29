// The console's live connection: one Socket.IO connection to /console, the incident's room joined
// after the server checked the session. Socket.IO only notifies; pages rebuild state from the server.
(function () {
  "use strict";
  var indicator = document.getElementById("connection");
  var incidentId = document.body.dataset.incidentId;
  var labels = document.documentElement.lang === "en"
    ? { online: "live", offline: "offline", connecting: "connecting…" }
    : { online: "live", offline: "offline", connecting: "verbinden…" };

  function show(state) {
    if (!indicator) return;
    indicator.dataset.state = state;
    indicator.textContent = labels[state];
  }

  if (typeof io === "undefined") { show("offline"); return; }
  show("connecting");
  var socket = io("/console", { transports: ["websocket", "polling"] });
  window.crisisSocket = socket;

  socket.on("connect", function () {
    if (!incidentId) { show("online"); return; }
    socket.emit("join", { incident_id: Number(incidentId) }, function (reply) {
      show(reply && reply.ok ? "online" : "offline");
      document.dispatchEvent(new CustomEvent("crisis:joined", { detail: reply }));
    });
  });
  socket.on("disconnect", function () { show("offline"); });
  socket.on("connect_error", function () { show("offline"); });
  socket.io.on("reconnect_attempt", function () { show("connecting"); });
})();

// A drill stopped for a real incident: every console page says so at once.
(function () {
  "use strict";
  var socket = window.crisisSocket;
  if (!socket) return;
  socket.on("drill.stopped", function (data) {
    var banner = document.createElement("div");
    banner.className = "drill-stopped-banner";
    banner.setAttribute("role", "alert");
    var lang = document.documentElement.lang === "en";
    banner.textContent = (lang ? "Drill stopped: " : "Oefening gestopt: ") + (data.title || "") +
      " — " + (data.ended_reason || "");
    document.body.insertBefore(banner, document.body.firstChild);
  });
})();
