// The inbox's live updates: the console relays the agency's inbox stream (the person's token
// stays on the server); on each change the rows are fetched again, rendered by the server.
"use strict";
(function () {
  var live = document.getElementById("live");
  var rows = document.getElementById("inbox-rows");
  if (!live || !rows || !window.EventSource) { return; }
  var button = document.getElementById("notify-me");
  if (button && window.Notification && Notification.permission === "default") {
    button.hidden = false;
    button.addEventListener("click", function () {
      Notification.requestPermission().then(function () { button.hidden = true; });
    });
  }
  var pending = false, again = false;
  function refresh(change) {
    if (pending) { again = true; return; }
    pending = true;
    fetch(live.dataset.rows, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString("<table><tbody>" + html + "</tbody></table>", "text/html");
        rows.replaceChildren.apply(rows, Array.prototype.slice.call(doc.querySelector("tbody").children));
        if (change && change.change === "delivery.created" && window.Notification && Notification.permission === "granted") {
          new Notification(live.dataset.notify, { body: change.reference || "" });
        }
      })
      .catch(function () {})
      .then(function () {
        pending = false;
        if (again) { again = false; refresh(null); }
      });
  }
  var source = new EventSource(live.dataset.stream);
  source.addEventListener("delivery", function (event) {
    var change = null;
    try { change = JSON.parse(event.data); } catch (e) { change = null; }
    refresh(change);
  });
})();
