// minicloud console: small progressive enhancements of our own. Every page works without them
// (forms post and pages render on the server); with them: live lists, JSON checks, uploads.
"use strict";
(function () {
  document.documentElement.classList.add("js");

  function csrfToken() {
    var field = document.querySelector("input[name=csrf_token]");
    return field ? field.value : "";
  }

  // Submit a <select data-autosubmit> as soon as it changes (the region selector).
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });

  // Ask before destructive buttons: <button data-confirm="Delete bucket x?">.
  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    var message = (button && button.dataset.confirm) || event.target.dataset.confirm;
    if (message && !window.confirm(message)) { event.preventDefault(); }
  });

  // Live state: <div data-live="url?fragment=1" data-interval="5000"> is refreshed in place by
  // polling its fragment, unless the keyboard focus is inside it or the tab is hidden.
  function detailsKey(details) {
    var summary = details.querySelector("summary");
    return details.id || (summary ? summary.textContent.replace(/\(.*\)/, "").trim() : "");
  }

  function refresh(region) {
    if (document.hidden || region.contains(document.activeElement) || region.dataset.busy) { return; }
    region.dataset.busy = "1";
    fetch(region.dataset.live, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        if (response.status === 401) { region.dataset.stopped = "1"; return null; }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html === null || html === undefined) { return; }
        // Keep what the user opened (<details>) open across the refresh.
        var opened = Array.prototype.map.call(region.querySelectorAll("details[open]"), detailsKey);
        region.innerHTML = html;
        region.querySelectorAll("details").forEach(function (details) {
          if (opened.indexOf(detailsKey(details)) >= 0) { details.open = true; }
        });
      })
      .catch(function () { /* the next poll tries again */ })
      .finally(function () { delete region.dataset.busy; });
  }
  document.querySelectorAll("[data-live]").forEach(function (region) {
    var every = parseInt(region.dataset.interval || "5000", 10);
    var timer = window.setInterval(function () {
      if (region.dataset.stopped) { window.clearInterval(timer); return; }
      refresh(region);
    }, every);
    region.addEventListener("minicloud:refresh", function () { refresh(region); });
  });

  // JSON editors: <textarea data-json> is parsed as the user types; a form whose JSON does not
  // parse is not sent, and the parser's message is shown next to the field.
  function checkJson(area) {
    var box = document.getElementById("j-" + area.name);
    var problem = "";
    if (area.value.trim() !== "") {
      try { JSON.parse(area.value); } catch (error) { problem = "This is not valid JSON: " + error.message; }
    }
    if (box) { box.textContent = problem; box.hidden = problem === ""; }
    area.setAttribute("aria-invalid", problem ? "true" : "false");
    return problem === "";
  }
  document.querySelectorAll("textarea[data-json]").forEach(function (area) {
    area.addEventListener("input", function () { checkJson(area); });
    area.form.addEventListener("submit", function (event) {
      if (!checkJson(area)) { event.preventDefault(); area.focus(); }
    });
  });

  // Uploads: drop files on the zone (or pick them); each is PUT to the console's upload endpoint
  // as its raw body (streamed into S3 by the server), with a progress bar per file.
  document.querySelectorAll("[data-upload]").forEach(function (zone) {
    var input = zone.querySelector("input[type=file]");
    var list = zone.querySelector(".uploads");
    var prefixField = zone.querySelector("input[name=prefix]");
    function upload(file) {
      var item = document.createElement("li");
      var name = document.createElement("span");
      var bar = document.createElement("progress");
      var status = document.createElement("span");
      name.textContent = file.name;
      bar.max = file.size || 1; bar.value = 0;
      bar.setAttribute("aria-label", "Upload of " + file.name);
      status.textContent = "0%";
      status.setAttribute("role", "status");
      item.append(name, bar, status);
      list.append(item);
      var key = (prefixField ? prefixField.value : "") + file.name;
      var xhr = new XMLHttpRequest();
      xhr.open("PUT", zone.dataset.upload + "?key=" + encodeURIComponent(key));
      xhr.setRequestHeader("X-CSRF-Token", csrfToken());
      if (file.type) { xhr.setRequestHeader("Content-Type", file.type); }
      xhr.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable) {
          bar.max = event.total; bar.value = event.loaded;
          status.textContent = Math.floor(100 * event.loaded / event.total) + "%";
        }
      });
      xhr.addEventListener("load", function () {
        if (xhr.status >= 200 && xhr.status < 300) {
          bar.value = bar.max; status.textContent = "Uploaded";
          item.classList.add("done");
          document.querySelectorAll("[data-live]").forEach(function (region) {
            region.dispatchEvent(new Event("minicloud:refresh"));
          });
        } else {
          status.textContent = "Failed: " + xhr.responseText;
          item.classList.add("failed");
        }
      });
      xhr.addEventListener("error", function () { status.textContent = "Failed: the connection was lost"; });
      xhr.send(file);
    }
    function uploadAll(files) { Array.prototype.forEach.call(files, upload); }
    input.addEventListener("change", function () { uploadAll(input.files); input.value = ""; });
    zone.addEventListener("dragover", function (event) { event.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", function () { zone.classList.remove("over"); });
    zone.addEventListener("drop", function (event) {
      event.preventDefault(); zone.classList.remove("over");
      if (event.dataTransfer && event.dataTransfer.files.length) { uploadAll(event.dataTransfer.files); }
    });
  });

  // Copy buttons: <button data-copy="#id">.
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var target = document.querySelector(button.dataset.copy);
      if (target && navigator.clipboard) {
        navigator.clipboard.writeText(target.textContent.trim()).then(function () { button.textContent = "Copied"; });
      }
    });
  });
})();
