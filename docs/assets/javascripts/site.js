// Small site behaviours that Material does not have built in.
(function () {
  // 1. The language selector keeps the #anchor: both languages share heading ids.
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-language-link]");
    if (link && window.location.hash && link.href.indexOf("#") < 0) {
      link.href = link.href + window.location.hash;
    }
  }, true);

  // 2. A code block titled with a repository path (snippets/...) links to that file on GitHub.
  function linkTitles(root) {
    var meta = document.querySelector('meta[name="source-base"]');
    if (!meta) return;
    root.querySelectorAll(".highlight > .filename, .highlight span.filename").forEach(function (title) {
      var path = title.textContent.trim();
      if (!/^(snippets|tests|docs)\/[\w./-]+$/.test(path) || title.querySelector("a")) return;
      var a = document.createElement("a");
      a.href = meta.content + path;
      a.textContent = path;
      a.className = "source-link";
      title.textContent = "";
      title.appendChild(a);
    });
  }
  if (typeof document$ !== "undefined") {
    document$.subscribe(function (doc) { linkTitles(doc.body); });
  } else {
    document.addEventListener("DOMContentLoaded", function () { linkTitles(document.body); });
  }
})();
