// Sortable leaderboard tables: plain DOM, no framework, works from file://.
// Numbers come from each cell's data-value (a float literal, or "" for an empty cell);
// a metric header's data-higher says which way is better, so the first click ranks best
// first and a second click reverses. Empty cells always sort last. Nothing here reads
// or evaluates text from a record: only data-value, which the builder writes as a number.
"use strict";

(function () {
  function cellValue(row, index, kind) {
    var cell = row.children[index];
    var raw = cell ? cell.getAttribute("data-value") : "";
    if (kind === "text") {
      return raw === null ? "" : raw;
    }
    if (raw === null || raw === "") {
      return null;
    }
    var value = Number(raw);
    return Number.isFinite(value) ? value : null;
  }

  function sortTable(table, header) {
    var headers = Array.prototype.slice.call(header.parentNode.children);
    var index = headers.indexOf(header);
    var kind = header.getAttribute("data-kind") || "number";
    var current = header.getAttribute("aria-sort");
    var bestFirst = header.getAttribute("data-higher") === "true" ? "descending" : "ascending";
    if (kind === "text") {
      bestFirst = "ascending";
    }
    var next = bestFirst;
    if (current === bestFirst) {
      next = bestFirst === "ascending" ? "descending" : "ascending";
    }
    var sign = next === "ascending" ? 1 : -1;
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var keyed = rows.map(function (row, position) {
      return { row: row, value: cellValue(row, index, kind), position: position };
    });
    keyed.sort(function (a, b) {
      if (a.value === null && b.value === null) {
        return a.position - b.position;
      }
      if (a.value === null) {
        return 1;
      }
      if (b.value === null) {
        return -1;
      }
      var order;
      if (kind === "text") {
        order = String(a.value).localeCompare(String(b.value));
      } else {
        order = a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
      }
      return order !== 0 ? sign * order : a.position - b.position;
    });
    keyed.forEach(function (item) {
      body.appendChild(item.row);
    });
    headers.forEach(function (th) {
      if (th.hasAttribute("aria-sort")) {
        th.setAttribute("aria-sort", th === header ? next : "none");
      }
    });
  }

  function init() {
    var tables = document.querySelectorAll("table[data-sortable]");
    Array.prototype.forEach.call(tables, function (table) {
      var headers = table.tHead ? table.tHead.rows[0].children : [];
      Array.prototype.forEach.call(headers, function (header) {
        if (!header.hasAttribute("aria-sort")) {
          return;
        }
        var button = header.querySelector("button") || header;
        button.addEventListener("click", function () {
          sortTable(table, header);
        });
      });
    });
    document.documentElement.classList.add("js");
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
